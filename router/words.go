package router

import "strings"

// wordFlags describe what the classifier knows about a lower-case word.
type wordFlags uint8

const (
	// wKw: a keyword. "kw (" is syntax, not a function call, and in
	// "kw name (" the name is a function call, not a table alias with a
	// column list.
	wKw wordFlags = 1 << iota
	// wPure: a builtin function (or type name with a modifier, e.g.
	// varchar(10)) with no side effect that matters for routing.
	wPure
	// wWrite: a function with a side effect that must happen on the
	// primary, or that a standby refuses.
	wWrite
	// wSession: a function that changes its session's state (settings,
	// the random seed), which the statement's session keeps afterwards.
	wSession
	// wAdvisory: a session-level advisory lock function (SessionBound).
	wAdvisory
	// wSequence: currval or lastval (SessionBound).
	wSequence
)

// keywords that may be followed by "(" or by a function call. It need not
// be complete: an unknown word in front of "name(" makes the classifier
// treat name as a table alias, an unknown word followed by "(" makes it a
// call (Unsure).
const kwList = `
select from where group order by having limit offset fetch first next rows row
only window as on join inner outer left right full cross natural using lateral
and or not is null true false case when then else end distinct all any some
array cast collate like ilike similar between in exists union intersect except
values with recursive materialized over filter partition range groups within
returning set operator zone at interval isnull notnull unique check variadic
escape for of nowait skip locked share key default into asc desc nulls last
tablesample repeatable ordinality symmetric asymmetric to leading trailing both
placing overlaps unknown preceding following unbounded current exclude ties
others search cycle depth breadth grouping sets rollup cube extract position
substring trim overlay coalesce nullif greatest least treat xmlelement
xmlforest xmlconcat xmlparse xmlpi xmlroot xmlserialize xmlexists xmltable
xmlattributes xmlnamespaces json_table json_object json_array json_exists
json_query json_value json_scalar json_serialize json conflict nothing
year month day hour minute second
`

// pureList is a compact allowlist of common builtins that have no side
// effect a standby would refuse or the primary must see. Anything called
// in a query and not listed makes the query Unsure, which costs nothing
// when it is in fact a read.
const pureList = `
count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg
jsonb_object_agg bool_and bool_or every bit_and bit_or stddev stddev_pop
stddev_samp variance var_pop var_samp percentile_cont percentile_disc mode
rank dense_rank row_number ntile lag lead first_value last_value nth_value
cume_dist percent_rank corr covar_pop covar_samp xmlagg range_agg
coalesce nullif greatest least
abs ceil ceiling floor round trunc sign sqrt cbrt power pow exp ln log log10
mod div pi degrees radians random width_bucket sin cos tan asin acos
atan atan2 gcd lcm factorial scale
lower upper initcap length char_length character_length octet_length
bit_length concat concat_ws substr substring left right lpad rpad ltrim rtrim
btrim trim replace reverse repeat split_part strpos position format md5
sha224 sha256 sha384 sha512 encode decode translate ascii chr regexp_replace
regexp_match regexp_matches regexp_split_to_array regexp_split_to_table
regexp_like regexp_count regexp_substr regexp_instr starts_with quote_ident
quote_literal quote_nullable to_hex string_to_array array_to_string
convert_from convert_to normalize overlay
now current_timestamp current_time localtime localtimestamp clock_timestamp
statement_timestamp transaction_timestamp timeofday date_trunc date_part
extract age make_date make_time make_timestamp make_timestamptz make_interval
to_timestamp to_date to_char to_number justify_days justify_hours
justify_interval isfinite date_bin timezone
array_length array_lower array_upper array_dims array_ndims cardinality
array_append array_prepend array_cat array_position array_positions
array_remove array_replace unnest generate_series generate_subscripts
array_fill trim_array
to_json to_jsonb row_to_json array_to_json json_build_object
jsonb_build_object json_build_array jsonb_build_array json_object
jsonb_object json_array_length jsonb_array_length json_each jsonb_each
json_each_text jsonb_each_text json_extract_path jsonb_extract_path
json_extract_path_text jsonb_extract_path_text json_object_keys
jsonb_object_keys json_populate_record jsonb_populate_record
json_populate_recordset jsonb_populate_recordset json_array_elements
jsonb_array_elements json_array_elements_text jsonb_array_elements_text
json_typeof jsonb_typeof json_to_record jsonb_to_record json_to_recordset
jsonb_to_recordset json_strip_nulls jsonb_strip_nulls jsonb_set jsonb_set_lax
jsonb_insert jsonb_pretty jsonb_path_query jsonb_path_query_array
jsonb_path_query_first jsonb_path_exists jsonb_path_match
gen_random_uuid
version current_setting current_database current_schema
current_schemas current_user session_user current_catalog pg_backend_pid
inet_server_addr inet_server_port inet_client_addr inet_client_port
pg_postmaster_start_time pg_conf_load_time has_table_privilege
has_schema_privilege has_database_privilege has_column_privilege
has_function_privilege has_sequence_privilege pg_has_role pg_typeof
pg_column_size pg_relation_size pg_total_relation_size pg_table_size
pg_indexes_size pg_database_size pg_size_pretty pg_size_bytes pg_get_viewdef
pg_get_indexdef pg_get_constraintdef pg_get_functiondef
pg_get_function_arguments pg_get_function_result pg_get_expr
pg_get_serial_sequence pg_get_userbyid pg_table_is_visible pg_type_is_visible
pg_function_is_visible format_type obj_description col_description
shobj_description pg_encoding_to_char pg_client_encoding pg_is_in_recovery
pg_last_wal_replay_lsn pg_last_wal_receive_lsn pg_last_xact_replay_timestamp
pg_wal_lsn_diff pg_is_wal_replay_paused pg_get_wal_replay_pause_state
pg_current_snapshot txid_current_snapshot pg_snapshot_xmin pg_snapshot_xmax
to_regclass to_regtype to_regproc to_regprocedure to_regnamespace to_regrole
pg_sleep pg_sleep_for pg_sleep_until pg_blocking_pids pg_tablespace_location
pg_relation_filenode pg_relation_filepath pg_get_keywords
to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery
ts_rank ts_rank_cd ts_headline setweight
host masklen netmask network broadcast family set_masklen abbrev
num_nonnulls num_nulls lo_get system bernoulli
int4range int8range numrange tsrange tstzrange daterange isempty lower_inc
upper_inc lower_inf upper_inf range_merge
varchar char character bpchar numeric decimal dec timestamp timestamptz time
timetz bit varbit varying float float4 float8 int int2 int4 int8 integer
smallint bigint real bool boolean text date jsonb uuid bytea inet cidr macaddr
oid regclass regtype regproc name xml money
`

// writeList: functions that write, take primary-only locks, or act on
// server state the app means to be the primary's.
//   - nextval and setval write.
//   - Transaction-scoped advisory locks succeed on a standby but would not
//     coordinate with the primary's holders: they must be taken there, and
//     end with the statement's transaction, so they are never left behind.
//   - Large-object writers, NOTIFY, xid assignment, backend signalling,
//     WAL/backup/slot control and statistics resets.
//   - The primary's WAL position, which a standby refuses (55000) rather
//     than answering 25006, so "try locally" would not recover.
const writeList = `
nextval setval
pg_advisory_xact_lock pg_advisory_xact_lock_shared pg_try_advisory_xact_lock
pg_try_advisory_xact_lock_shared
pg_notify
lo_create lo_creat lo_import lo_export lo_unlink lo_put lo_from_bytea
lo_truncate lo_truncate64 lowrite
txid_current pg_current_xact_id
pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile
pg_current_wal_lsn pg_current_wal_insert_lsn pg_current_wal_flush_lsn
pg_switch_wal pg_create_restore_point pg_start_backup pg_backup_start
pg_stop_backup pg_backup_stop pg_create_physical_replication_slot
pg_create_logical_replication_slot pg_drop_replication_slot
pg_replication_slot_advance pg_logical_emit_message pg_stat_reset
pg_stat_reset_shared pg_stat_reset_single_table_counters
pg_stat_reset_single_function_counters pg_stat_reset_slru
pg_stat_reset_replication_slot pg_promote pg_import_system_collations
dblink_exec
`

// sessionList: functions whose effect stays in the session that ran them.
// In a query that is otherwise a read they make it Session (it runs on the
// caller's own local connection); in a Write they set Has(Session), so
// that the serving node does not pool the primary connection it ran on.
const sessionList = `
set_config setseed
`

// Session-bound functions: the state they leave (or read) in the session is
// the point of calling them, and cannot follow the caller (SessionBound).
const (
	advisoryList = `
pg_advisory_lock pg_advisory_lock_shared pg_try_advisory_lock
pg_try_advisory_lock_shared pg_advisory_unlock pg_advisory_unlock_shared
pg_advisory_unlock_all
`
	sequenceList = `currval lastval`
)

// words is built once at init and only read afterwards.
var words = buildWords()

func buildWords() map[string]wordFlags {
	m := make(map[string]wordFlags, 600)
	for _, w := range strings.Fields(kwList) {
		m[w] |= wKw
	}
	for _, w := range strings.Fields(pureList) {
		m[w] |= wPure
	}
	for _, w := range strings.Fields(writeList) {
		m[w] |= wWrite
	}
	for _, w := range strings.Fields(sessionList) {
		m[w] |= wSession
	}
	for _, w := range strings.Fields(advisoryList) {
		m[w] |= wAdvisory
	}
	for _, w := range strings.Fields(sequenceList) {
		m[w] |= wSequence
	}
	return m
}

// wordInfo returns what is known about an unquoted word.
func (lx *lexer) wordInfo(t token) wordFlags {
	var buf [maxWord]byte
	w, ok := lx.lowerWord(t, &buf)
	if !ok {
		return 0
	}
	return words[string(w)]
}
