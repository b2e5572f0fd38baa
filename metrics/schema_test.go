package metrics_test

import (
	dto "github.com/prometheus/client_model/go"
)

// family is what the package promises about one metric family: its type
// and its variable labels (node and region come on top, as constant
// labels). docs/metrics.md and the package documentation list the same.
type family struct {
	typ    dto.MetricType
	labels []string
}

var (
	counter = dto.MetricType_COUNTER
	gauge   = dto.MetricType_GAUGE
)

var schema = map[string]family{
	"flypg_forwarded_statements_total":  {counter, nil},
	"flypg_local_statements_total":      {counter, nil},
	"flypg_retried_reads_total":         {counter, nil},
	"flypg_primary_reads_total":         {counter, nil},
	"flypg_awaits_total":                {counter, nil},
	"flypg_awaits_skipped_total":        {counter, nil},
	"flypg_await_timeouts_total":        {counter, nil},
	"flypg_await_duration_p50_seconds":  {gauge, nil},
	"flypg_await_duration_p99_seconds":  {gauge, nil},
	"flypg_committed_unknown_lsn_total": {counter, nil},
	"flypg_unknown_outcomes_total":      {counter, nil},
	"flypg_remote_transactions_serving": {gauge, nil},
	"flypg_node_info":                   {gauge, []string{"primary_region"}},

	"flypg_database_info":                       {gauge, []string{"database", "system_identifier"}},
	"flypg_database_role":                       {gauge, []string{"database", "role"}},
	"flypg_database_replay_lag_seconds":         {gauge, []string{"database"}},
	"flypg_database_receive_lag_bytes":          {gauge, []string{"database"}},
	"flypg_database_replayed_lsn_bytes":         {gauge, []string{"database"}},
	"flypg_database_primary_members":            {gauge, []string{"database"}},
	"flypg_tracker_waits_total":                 {counter, []string{"database"}},
	"flypg_tracker_immediate_waits_total":       {counter, []string{"database"}},
	"flypg_tracker_wait_timeouts_total":         {counter, []string{"database"}},
	"flypg_tracker_polls_total":                 {counter, []string{"database"}},
	"flypg_tracker_wait_for_calls_total":        {counter, []string{"database"}},
	"flypg_tracker_poll_errors_total":           {counter, []string{"database"}},
	"flypg_tracker_reconnects_total":            {counter, []string{"database"}},
	"flypg_tracker_refreshes_total":             {counter, []string{"database"}},
	"flypg_tracker_signal_wakeups_total":        {counter, []string{"database"}},
	"flypg_tracker_signal_connects_total":       {counter, []string{"database"}},
	"flypg_tracker_signal_failures_total":       {counter, []string{"database"}},
	"flypg_tracker_waiters":                     {gauge, []string{"database"}},
	"flypg_tracker_signal_active":               {gauge, []string{"database"}},
	"flypg_tracker_wake_delay_p50_seconds":      {gauge, []string{"database"}},
	"flypg_tracker_wake_delay_p99_seconds":      {gauge, []string{"database"}},
	"flypg_tracker_mode":                        {gauge, []string{"database", "mode"}},
	"flypg_serving_connections_max":             {gauge, []string{"database"}},
	"flypg_serving_connections_open":            {gauge, []string{"database"}},
	"flypg_serving_connections_in_use":          {gauge, []string{"database"}},
	"flypg_serving_connections_idle":            {gauge, []string{"database"}},
	"flypg_serving_waits_total":                 {counter, []string{"database"}},
	"flypg_serving_wait_duration_seconds_total": {counter, []string{"database"}},
	"flypg_serving_connections_closed_total":    {counter, []string{"database", "reason"}},

	"flypg_cluster_members":     {gauge, nil},
	"flypg_link_rtt_seconds":    {gauge, []string{"peer", "peer_region"}},
	"flypg_primary_member_info": {gauge, []string{"database", "peer", "peer_region"}},
}

// clusterOnly are the families a dev-mode node (no cluster) leaves out.
var clusterOnly = []string{"flypg_link_rtt_seconds", "flypg_primary_member_info", "flypg_database_primary_members"}
