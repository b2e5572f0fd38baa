# Labelled statements for router tests and the standby oracle.
#
# A record is a few header lines, the SQL (any number of lines, may be
# empty), and a line holding only ----. Lines starting with # and blank
# lines between records are ignored. Headers:
#   -- label: read|session|unsure|write|txcontrol|sessionbound   (required)
#   -- standby: ok|refused|error|skip  what a hot standby does with it;
#        defaults: read → ok, write → refused, others → skip; required for
#        unsure and sessionbound. "refused" means a recovery/read-only
#        SQLSTATE (see oracle_test.go), "error" any other error.
#   -- bound: advisory lock|sequence state|temporary object|listen
#        Result.Bound; required for sessionbound, and only there
#   -- holds: advisory lock  the standby session holds an advisory lock
#        after the statement (the oracle checks pg_locks after every
#        record: held exactly when this header says so)
#   -- strings: nonstandard  classify with Options{NonStandardStrings:
#        true}; the oracle runs it with standard_conforming_strings = off
#   -- run: autocommit   run without the oracle's BEGIN … ROLLBACK
#   -- why: …            required when standby differs from the default,
#        and for every sessionbound record (why it is refused)
# Fixtures (tables users, orders, items, audit, "Weird Table", café, temp,
# app.settings, sequence seq, view active_users, matview order_totals,
# functions add_one, user_count, log_msg, app.touch, procedures noop,
# add_audit, large object 4242) are created by oracle_test.go.

######## Reads: plain queries, GORM/sqlx shapes

-- label: read
SELECT 1
----
-- label: read
select 1
----
-- label: read
SeLeCt 1
----
-- label: read
SELECT * FROM users
----
-- label: read
SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2
----
-- label: read
SELECT * FROM "users" WHERE "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT 1
----
-- label: read
SELECT count(*) FROM "users" WHERE "users"."deleted_at" IS NULL
----
-- label: read
SELECT id, name, email FROM users WHERE email = $1
----
-- label: read
SELECT id, name FROM users WHERE id = $1 AND name = $2
----
-- label: read
SELECT * FROM users WHERE id IN ($1, $2, $3)
----
-- label: read
SELECT * FROM users WHERE id = ANY($1)
----
-- label: read
SELECT "users".* FROM "users" INNER JOIN "orders" ON "orders"."user_id" = "users"."id" WHERE "orders"."status" = $1
----
-- label: read
SELECT u.*, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.status = 'paid'
----
-- label: read
SELECT count(*) AS "count" FROM (SELECT 1 FROM users) sub
----
-- label: read
SELECT * FROM users LIMIT 10 OFFSET 20
----
-- label: read
SELECT * FROM users ORDER BY id FETCH FIRST 5 ROWS ONLY
----
-- label: read
SELECT COUNT(*) FROM ORDERS
----
-- label: read
SELECT * FROM users WHERE created_at > now() - interval '7 days'
----
-- label: read
SELECT count(DISTINCT user_id) FROM orders
----
-- label: read
SELECT id FROM users UNION SELECT id FROM orders EXCEPT SELECT 3 INTERSECT SELECT 1
----
-- label: read
SELECT EXISTS(SELECT 1 FROM users WHERE id = 1)
----
-- label: read
SELECT 1 FROM users WHERE id = ANY('{1,2}'::bigint[])
----
-- label: read
SELECT * FROM users WHERE name LIKE 'a%' AND age BETWEEN 18 AND 65 OR email IS NULL
----
-- label: read
SELECT * FROM users WHERE name SIMILAR TO '(a|b)%'
----
-- label: read
SELECT * FROM users WHERE (name, email) = ('ann', 'ann@example.com')
----
-- label: read
SELECT * FROM users WHERE EXISTS (SELECT 1 FROM orders WHERE orders.user_id = users.id)
----
-- label: read
SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id LIMIT 1) lo
----
-- label: read
SELECT * FROM users TABLESAMPLE SYSTEM (50)
----
-- label: read
SELECT * FROM order_totals
----
-- label: read
SELECT * FROM active_users
----
-- label: read
SELECT * FROM app.settings
----
-- label: read
SELECT a.x FROM (SELECT 1 AS x) AS a
----
-- label: read
SELECT x FROM (VALUES (1), (2)) v(x)
----
-- label: read
SELECT * FROM users AS u(a, b)
----
-- label: read
SELECT * FROM users WHERE data @> '{"a": 1}'
----
-- label: read
SELECT data->>'a', data #> '{b,0}' FROM users
----
-- label: read
SELECT CASE WHEN age > 30 THEN 'old' ELSE 'young' END FROM users
----
-- label: read
SELECT ARRAY(SELECT id FROM users), ROW(1, 2)
----
-- label: read
SELECT interval '1 day' + now()
----
-- label: read
SELECT '1 day 00:00:01.5'::interval day to second(2), interval '3' second(1), '2024-02-29'::timestamp(3)
----
-- label: read
SELECT ctid, xmin FROM users
----

######## Reads: parentheses, set operations, VALUES, TABLE, WITH

-- label: read
(SELECT 1)
----
-- label: read
((SELECT id FROM users) UNION (SELECT user_id FROM orders)) ORDER BY 1
----
-- label: read
   
	(  (SELECT 1)  )
----
-- label: read
VALUES (1, 'a'), (2, 'b')
----
-- label: read
TABLE users
----
-- label: read
WITH t AS (SELECT * FROM users) SELECT * FROM t
----
-- label: read
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r
----
-- label: read
with recursive tree(id, depth) as (
  select id, 0 from users where id = 1
  union all
  select u.id, t.depth + 1 from users u join tree t on u.id = t.id + 1 where t.depth < 3
) search depth first by id set ordercol
select * from tree order by ordercol
----
-- label: read
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) CYCLE n SET is_cycle USING path SELECT n FROM r
----
-- label: read
WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED (SELECT 2) SELECT * FROM a, b
----
-- label: read
WITH update AS (SELECT 1 AS x) SELECT * FROM update
----
-- label: read
WITH delete AS (SELECT 1 AS x) SELECT x FROM delete
----
-- label: read
WITH insert(a) AS (SELECT 1) SELECT a FROM insert
----
-- label: read
WITH "delete" AS (SELECT 1) SELECT * FROM "delete"
----
-- label: read
WITH upd AS (SELECT 1) SELECT * FROM upd
----
-- label: read
WITH x AS (SELECT 1) VALUES (1)
----
-- label: read
WITH x AS (SELECT 1 AS a) TABLE x
----
-- label: read
WITH x AS (SELECT 1 AS a) (SELECT * FROM x)
----
-- label: read
WITH a AS (SELECT 1 AS v), b AS (WITH c AS (SELECT 2 AS v) SELECT * FROM c) SELECT * FROM a, b
----
-- label: read
WITH x AS (SELECT 1) SELECT * FROM x;
----

######## Reads: keywords in identifiers, aliases, strings, comments

-- label: read
SELECT * FROM users update WHERE update.id = 1
----
-- label: read
SELECT "delete", "update", "select" FROM users
----
-- label: read
SELECT updated_at, deleted_at, updated_by FROM users WHERE updated_at IS NULL
----
-- label: read
SELECT update FROM (SELECT 1 AS update) s
----
-- label: read
SELECT (update) FROM (SELECT 1 AS update) s
----
-- label: read
SELECT (update + 1), (update IS NULL) FROM (SELECT 1 AS update) s
----
-- label: read
SELECT s.delete FROM (SELECT 1 AS delete) s
----
-- label: read
SELECT insert, merge FROM (SELECT 1 AS insert, 2 AS merge) s
----
-- label: read
SELECT * FROM (SELECT 1) AS delete
----
-- label: read
SELECT 1 AS update, 2 AS "INSERT", 3 AS "DELETE"
----
-- label: read
SELECT 1 FROM users WHERE "update" IS NULL AND NOT "delete"
----
-- label: read
SELECT "for", "update" FROM (SELECT 1 AS "for", 2 AS "update") s
----
-- label: read
SELECT 'DELETE FROM users' AS q
----
-- label: read
SELECT 'select * into x from y' AS q
----
-- label: read
SELECT E'it\'s; DROP TABLE users' AS q
----
-- label: read
SELECT e'\\'; 
----
-- label: read
SELECT 'C:\', 'x; DELETE FROM users'
----
-- label: read
SELECT * FROM users WHERE name = 'O''Brien; DELETE FROM users'
----
-- label: read
SELECT 'it''s FOR UPDATE'
----
-- label: read
SELECT * FROM users WHERE name = 'for update'
----
-- label: read
SELECT $$; DELETE FROM users; $$ AS body
----
-- label: read
SELECT $body$ INSERT INTO x $body$ AS body
----
-- label: read
SELECT $tag$ has $$ inside; UPDATE t SET x = 1 $tag$, $$x$$
----
-- label: read
SELECT $a$ FOR UPDATE $a$
----
-- label: read
SELECT $1::int + $2::int
----
-- label: read
SELECT $1::text || '$$' FROM users WHERE id = $2
----
-- label: read
SELECT U&'\0441\043B\043E\043D' AS elephant
----
-- label: read
SELECT U&'d!0061t!+000061' UESCAPE '!' AS data
----
-- label: read
SELECT 1 AS U&"d\0061t\+000061"
----
-- label: read
SELECT B'1010', X'FF', N'nat'
----
-- label: read
SELECT 1 -- ; DROP TABLE users
----
-- label: read
SELECT /* UPDATE users SET name = 'x' */ 1
----
-- label: read
SELECT /* nested /* DELETE FROM users; */ still a comment; INSERT INTO t */ 1
----
-- label: read
/* leading comment */ SELECT 1
----
-- label: read
-- leading line comment; DELETE FROM users
SELECT 1
----
-- label: read
SELECT -- for update
* FROM users
----
-- label: read
SELECT * FROM users WHERE name = $1 -- FOR UPDATE
----
-- label: read
SELECT $1::text AS "FOR UPDATE"
----
-- label: read
SELECT 'a' || 'b' AS "for update"
----
-- label: read
SELECT 'a' AS "x""y; DELETE"
----
-- label: read
SELECT "a""b" FROM (SELECT 1 AS "a""b") s
----
-- label: read
SELECT "select", "from" FROM "Weird Table"
----
-- label: read
SELECT naïve FROM café WHERE naïve > 0
----
-- label: read
SELECT 'ünïcödé' AS "ÜberColumn", 'ℵ' AS "ℵ"
----
-- label: read
SELECT id AS fOr_x_update_y FROM users
----
-- label: read
SELECT substring('abc' FROM 1 FOR 2), overlay('abc' PLACING 'x' FROM 1 FOR 1)
----
-- label: read
SELECT * FROM users WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = users.id AND o.status = 'new')
----

######## Reads: builtin functions (allowlist)

-- label: read
SELECT now(), current_timestamp, current_date, clock_timestamp()
----
-- label: read
SELECT pg_last_wal_replay_lsn()
----
-- label: read
SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()
----
-- label: read
SELECT current_setting('server_version_num')::int
----
-- label: read
SELECT version()
----
-- label: read
SELECT coalesce(max(age), 0) FROM users
----
-- label: read
SELECT lower(name), upper(email), length(name) FROM users
----
-- label: read
SELECT LOWER(name), Upper(email) FROM users
----
-- label: read
SELECT array_agg(id ORDER BY id) FROM users
----
-- label: read
SELECT json_build_object('id', id, 'name', name) FROM users
----
-- label: read
SELECT jsonb_path_query(data, '$.b[*]') FROM users
----
-- label: read
SELECT * FROM generate_series(1, 3) g(i)
----
-- label: read
SELECT * FROM generate_series(1, 3) AS g(i)
----
-- label: read
SELECT * FROM unnest(ARRAY[1,2,3]) WITH ORDINALITY AS t(x, n)
----
-- label: read
SELECT date_trunc('day', created_at), count(*) FROM orders GROUP BY 1 ORDER BY 1
----
-- label: read
SELECT DISTINCT ON (user_id) user_id, total FROM orders ORDER BY user_id, created_at DESC
----
-- label: read
SELECT status, sum(total) FILTER (WHERE total > 10) FROM orders GROUP BY ROLLUP (status)
----
-- label: read
SELECT status, count(*) FROM orders GROUP BY GROUPING SETS ((status), ())
----
-- label: read
SELECT id, rank() OVER (PARTITION BY status ORDER BY total DESC) FROM orders
----
-- label: read
SELECT id, row_number() OVER w FROM orders WINDOW w AS (ORDER BY id)
----
-- label: read
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders
----
-- label: read
SELECT CAST(age AS numeric(10, 2)), age::varchar(10), '1'::bigint, now()::timestamp(3) FROM users
----
-- label: read
SELECT EXTRACT(year FROM created_at), substring(name FROM 1 FOR 2), trim(both ' ' from name), position('a' in name) FROM users
----
-- label: read
SELECT pg_catalog.now(), pg_catalog.lower('X')
----
-- label: read
SELECT "lower"('X')
----
-- label: session
-- standby: ok
SELECT set_config('search_path', 'public', true)
----
-- label: read
SELECT gen_random_uuid(), random()
----
-- label: read
SELECT md5('x'), encode(sha256('x'), 'hex')
----
-- label: read
SELECT to_char(now(), 'YYYY-MM-DD'), age(now(), created_at) FROM users
----
-- label: read
SELECT greatest(1, 2), least(1, 2), nullif(1, 1)
----
-- label: read
SELECT pg_size_pretty(pg_database_size(current_database()))
----
-- label: read
SELECT has_table_privilege('users', 'SELECT')
----
-- label: read
SELECT pg_sleep(0)
----
-- label: read
SELECT to_tsvector('english', name) @@ to_tsquery('ann') FROM users
----
-- label: read
SELECT count(*) FROM pg_stat_activity
----
-- label: read
SELECT relname FROM pg_class WHERE relkind = 'r' LIMIT 5
----
-- label: read
SELECT pg_get_viewdef('active_users'::regclass), to_regclass('users')
----
-- label: read
SELECT format('%s-%s', id, name) FROM users
----
-- label: read
SELECT string_agg(name, ',' ORDER BY name) FROM users
----
-- label: read
SELECT row_to_json(t) FROM (SELECT id, name FROM users) t
----
-- label: read
SELECT json_agg(u) FROM users u
----
-- label: read
SELECT * FROM json_each('{"a":1}')
----
-- label: read
SELECT * FROM jsonb_to_record('{"a":1}') AS x(a int)
----
-- label: read
SELECT lo_get(4242)
----
-- label: read
SELECT left(name, 1), right(name, 1) FROM users
----
-- label: read
SELECT regexp_replace(name, 'a', 'b', 'g') FROM users
----
-- label: read
SELECT xmlelement(name foo, 'bar')
----
-- label: read
SELECT pg_current_snapshot(), txid_current_snapshot()
----
-- label: read
SELECT current_user, session_user, current_schema(), pg_backend_pid()
----
-- label: read
SELECT 1 OPERATOR(pg_catalog.+) 1
----

######## Reads: SHOW, EXPLAIN without ANALYZE, COPY TO, cursors

-- label: read
SHOW search_path
----
-- label: read
SHOW ALL
----
-- label: read
show transaction_read_only
----
-- label: read
EXPLAIN SELECT * FROM users
----
-- label: read
EXPLAIN DELETE FROM users
----
-- label: read
EXPLAIN INSERT INTO users (name) VALUES ('x')
----
-- label: read
EXPLAIN (FORMAT JSON) UPDATE users SET name = 'x'
----
-- label: read
EXPLAIN (ANALYZE false) DELETE FROM users
----
-- label: read
EXPLAIN (ANALYZE off, COSTS off) DELETE FROM users
----
-- label: read
EXPLAIN (ANALYZE 0) INSERT INTO audit (msg) VALUES ('x')
----
-- label: read
EXPLAIN VERBOSE SELECT 1
----
-- label: read
EXPLAIN SELECT nextval('seq')
----
-- label: read
EXPLAIN SELECT * FROM users FOR UPDATE
----
-- label: read
EXPLAIN SELECT * INTO explained_copy FROM users
----
-- label: read
EXPLAIN WITH d AS (DELETE FROM audit RETURNING id) SELECT * FROM d
----
-- label: read
EXPLAIN ANALYZE SELECT * FROM users
----
-- label: read
EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM orders
----
-- label: read
ExPlAiN AnAlYzE select 1
----
-- label: read
EXPLAIN ANALYZE SELECT lower(name) FROM users
----
-- label: read
COPY users TO '/dev/null'
----
-- label: read
COPY (SELECT * FROM users WHERE age > 18) TO '/dev/null'
----
-- label: read
COPY users (id, name) TO '/dev/null' WITH (FORMAT csv, HEADER)
----
-- label: read
COPY (SELECT id FROM users) TO '/dev/null' WITH (FORMAT csv, FORCE_QUOTE (id))
----
-- label: read
COPY "Weird Table" TO '/dev/null'
----
-- label: read
DECLARE c CURSOR FOR SELECT * FROM users
----
-- label: read
DECLARE c CURSOR FOR SELECT 1; FETCH NEXT FROM c
----
-- label: read
DECLARE c SCROLL CURSOR WITH HOLD FOR SELECT * FROM users; MOVE LAST IN c; FETCH PRIOR FROM c
----

######## Reads: multiple statements and empty text

-- label: read
SELECT 1; SELECT 2
----
-- label: read
SELECT 1;;;
----
-- label: read
----
-- label: read
-- only a comment
----
-- label: read
/* only */ /* comments */
----
-- label: read
;
----
-- label: read
  ;  ;  
----

######## Unsure: calls of functions that are not known builtins

-- label: unsure
-- standby: ok
SELECT user_count()
----
-- label: unsure
-- standby: ok
SELECT add_one(1)
----
-- label: unsure
-- standby: ok
SELECT add_one(id) FROM users
----
-- label: unsure
-- standby: ok
SELECT public.add_one(2)
----
-- label: unsure
-- standby: ok
SELECT "public"."add_one"(3)
----
-- label: unsure
-- standby: ok
SELECT * FROM users WHERE id = add_one(0)
----
-- label: unsure
-- standby: ok
SELECT coalesce(user_count(), 0)
----
-- label: unsure
-- standby: ok
SELECT ARRAY[add_one(1)], CAST(add_one(1) AS text)
----
-- label: unsure
-- standby: ok
VALUES (add_one(1))
----
-- label: unsure
-- standby: ok
SELECT * FROM generate_series(1, 2) AS g(i) WHERE add_one(i) > 1
----
-- label: unsure
-- standby: ok
SELECT DISTINCT ON (id) add_one(age) FROM users
----
-- label: unsure
-- standby: ok
SELECT U&"add_one"(1)
----
-- label: unsure
-- standby: refused
SELECT log_msg('x')
----
-- label: unsure
-- standby: refused
SELECT app.touch()
----
-- label: unsure
-- standby: refused
SELECT (SELECT log_msg('nested'))
----
-- label: unsure
-- standby: refused
WITH x AS (SELECT log_msg('cte')) SELECT * FROM x
----
-- label: unsure
-- standby: refused
SELECT * FROM users WHERE log_msg(name) > 0
----
-- label: unsure
-- standby: ok
EXPLAIN ANALYZE SELECT user_count()
----
-- label: unsure
-- standby: refused
EXPLAIN ANALYZE SELECT log_msg('x')
----
-- label: unsure
-- standby: refused
COPY (SELECT log_msg('copy')) TO '/dev/null'
----
-- label: unsure
-- standby: ok
DECLARE c CURSOR FOR SELECT add_one(1)
----
-- label: unsure
-- standby: ok
PREPARE p AS SELECT 1; EXECUTE p
----
-- label: unsure
-- standby: ok
PREPARE p(int) AS SELECT $1 + 1; EXECUTE p(41)
----
-- label: unsure
-- standby: error
EXECUTE nope
----
-- label: unsure
-- standby: ok
SELECT add_one(1); SET search_path = public
----

######## Writes: DML

-- label: write
INSERT INTO users (name) VALUES ('x')
----
-- label: write
insert into users (name) values ('x') returning id
----
-- label: write
INSERT INTO "users" ("name","email","age","created_at","updated_at","deleted_at") VALUES ($1,$2,$3,$4,$5,$6) RETURNING "id"
----
-- label: write
INSERT INTO "orders" ("user_id","total","status","created_at") VALUES ($1,$2,$3,$4),($5,$6,$7,$8) RETURNING "id"
----
-- label: write
INSERT INTO users (name) SELECT name FROM users
----
-- label: write
INSERT INTO items (id, sku, qty) VALUES (1, 'a', 1) ON CONFLICT (id) DO UPDATE SET qty = items.qty + 1
----
-- label: write
INSERT INTO items (id, sku, qty) VALUES (1, 'a', 1) ON CONFLICT DO NOTHING
----
-- label: write
INSERT INTO users (id, name) VALUES (nextval('users_id_seq'), 'x')
----
-- label: write
INSERT INTO "Weird Table" ("select", "from") VALUES (1, 'SELECT 1')
----
-- label: write
INSERT INTO café (naïve) VALUES (1)
----
-- label: write
insert/**/into audit(msg) values('x')
----
-- label: write
/* comment */ INSERT INTO audit (msg) VALUES ('c')
----
-- label: write
-- comment
DELETE FROM audit
----
-- label: write
UPDATE users SET name = 'y' WHERE id = 1
----
-- label: write
UPDATE "users" SET "name"=$1,"updated_at"=$2 WHERE "users"."deleted_at" IS NULL AND "id" = $3
----
-- label: write
UPDATE "users" SET "deleted_at"=$1 WHERE "users"."id" = $2 AND "users"."deleted_at" IS NULL
----
-- label: write
UPDATE users SET "update" = 1, "delete" = true
----
-- label: write
update users u set age = age + 1 from orders o where o.user_id = u.id
----
-- label: write
UPDATE ONLY users SET age = 1
----
-- label: write
UpDaTe users SET age = 2
----
-- label: write
DELETE FROM users WHERE id = 0
----
-- label: write
delete from orders using users where users.id = orders.user_id
----
-- label: write
DELETE FROM "users" WHERE "users"."id" = $1
----
-- label: write
MERGE INTO items i USING (VALUES (1, 'a', 5)) v(id, sku, qty) ON i.id = v.id WHEN MATCHED THEN UPDATE SET qty = v.qty WHEN NOT MATCHED THEN INSERT VALUES (v.id, v.sku, v.qty)
----
-- label: write
TRUNCATE audit
----
-- label: write
TRUNCATE TABLE audit, items RESTART IDENTITY
----

######## Writes: data-modifying CTEs

-- label: write
WITH d AS (DELETE FROM audit RETURNING *) SELECT count(*) FROM d
----
-- label: write
WITH i AS (INSERT INTO audit (msg) VALUES ('x') RETURNING id) SELECT id FROM i
----
-- label: write
WITH u AS (UPDATE users SET age = age WHERE false RETURNING id) SELECT * FROM u
----
-- label: write
WITH x AS (SELECT 1) INSERT INTO audit (msg) SELECT 'x' FROM x
----
-- label: write
WITH x AS (SELECT id FROM users) UPDATE users SET age = 1 WHERE id IN (SELECT id FROM x)
----
-- label: write
WITH x AS (SELECT 1) DELETE FROM audit
----
-- label: write
WITH RECURSIVE r AS (SELECT 1 AS n), d AS MATERIALIZED (DELETE FROM audit RETURNING id) SELECT * FROM r
----
-- label: write
WITH a AS (SELECT 1), b AS (WITH c AS (SELECT 2) SELECT * FROM c), m AS (INSERT INTO audit (msg) VALUES ('m') RETURNING id) SELECT * FROM a
----
-- label: write
with "update" as (update users set age = 3 where id = 1 returning id) select * from "update"
----
-- label: write
WITH m AS NOT MATERIALIZED (SELECT 1) , del AS ( /* x */ DELETE FROM audit WHERE id < 0 RETURNING id ) SELECT 1
----
-- label: write
WITH x AS (SELECT 1) MERGE INTO items i USING users u ON i.id = u.id WHEN MATCHED THEN DELETE
----

######## Writes: SELECT INTO and row locks

-- label: write
SELECT * INTO users_copy FROM users
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary table would live on whichever primary connection ran it, which the serving node retires
SELECT id INTO TEMP tmp_ids FROM users
----
-- label: write
WITH x AS (SELECT 1 AS a) SELECT * INTO newtab FROM x
----
-- label: write
SELECT * FROM users WHERE id = 1 FOR UPDATE
----
-- label: write
SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2 FOR UPDATE
----
-- label: write
SELECT * FROM users FOR NO KEY UPDATE
----
-- label: write
SELECT * FROM users FOR SHARE
----
-- label: write
SELECT * FROM users FOR KEY SHARE
----
-- label: write
SELECT * FROM users FOR UPDATE SKIP LOCKED
----
-- label: write
SELECT * FROM users FOR UPDATE OF users NOWAIT
----
-- label: write
SELECT * FROM users FOR SHARE OF users
----
-- label: write
select * from users for update
----
-- label: write
SELECT 1 FROM users WHERE id = 1 fOr UpDaTe
----
-- label: write
SELECT * FROM users WHERE id IN (SELECT user_id FROM orders FOR UPDATE)
----
-- label: write
WITH x AS (SELECT * FROM users FOR UPDATE) SELECT * FROM x
----
-- label: write
(SELECT * FROM users) FOR UPDATE
----
-- label: write
SELECT * FROM users
FOR
-- a comment between
UPDATE
----

######## Writes: sequence, advisory-lock and other side-effecting functions

-- label: write
SELECT nextval('seq')
----
-- label: write
SELECT NEXTVAL('seq')
----
-- label: write
SELECT nextval('seq'::regclass)
----
-- label: write
SELECT pg_catalog.nextval('seq')
----
-- label: write
SELECT setval('seq', 100)
----
-- label: write
SELECT id, nextval('seq') FROM users
----
-- label: write
VALUES (nextval('seq'))
----
-- label: write
SELECT * FROM users WHERE id = (SELECT setval('seq', 5))
----
-- label: sessionbound
-- bound: sequence state
-- standby: error
-- why: currval reads what nextval left in the session: 55000 on a fresh one, another caller's value on a pooled primary connection
SELECT currval('seq')
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it; forwarded in autocommit it would vanish with the retired connection
SELECT pg_advisory_lock(1)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it; forwarded in autocommit it would vanish with the retired connection
SELECT pg_try_advisory_lock(1)
----
-- label: write
SELECT pg_advisory_xact_lock(42)
-- standby: ok
-- why: a standby grants it, but it would not exclude the primary's holders; it ends with the statement's transaction
----
-- label: write
SELECT pg_try_advisory_xact_lock_shared(1)
-- standby: ok
-- why: a standby grants it, but it would not exclude the primary's holders; it ends with the statement's transaction
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- why: releases the locks of whichever session runs it, never the caller's: a standby's or a pooled primary connection's
SELECT pg_advisory_unlock_all()
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it; forwarded in autocommit it would vanish with the retired connection
SELECT pg_catalog.pg_advisory_lock(hashtext('job'))
----
-- label: write
SELECT pg_notify('chan', 'payload')
----
-- label: write
SELECT lo_create(0)
----
-- label: write
SELECT lo_unlink(4242)
----
-- label: write
SELECT lo_put(4242, 0, '\x00')
----
-- label: write
SELECT lo_from_bytea(0, 'x')
----
-- label: write
SELECT txid_current()
----
-- label: write
SELECT pg_current_xact_id()
----
-- label: write
SELECT pg_current_wal_lsn()
----
-- label: write
SELECT pg_switch_wal()
----
-- label: write
SELECT pg_create_restore_point('x')
----
-- label: write
SELECT pg_terminate_backend(0)
-- standby: ok
-- why: signals the standby's own backends (here none); the app means the primary's
----
-- label: write
SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE false
-- standby: ok
-- why: signals the standby's own backends (here none); the app means the primary's
----
-- label: write
SELECT pg_reload_conf()
-- standby: ok
-- why: reloads the standby's own configuration; the app means the primary's
----
-- label: write
SELECT pg_stat_reset()
-- standby: ok
-- why: resets the standby's own statistics; the app means the primary's
----

######## Writes: CALL, DO

-- label: write
CALL add_audit('x')
----
-- label: write
CALL noop()
-- standby: ok
-- why: CALL is opaque; a procedure that writes nothing runs on a standby
----
-- label: write
DO $$ BEGIN INSERT INTO audit (msg) VALUES ('do'); END $$
----
-- label: write
DO LANGUAGE plpgsql $body$ BEGIN UPDATE users SET age = age; END $body$
----
-- label: write
DO $$ BEGIN PERFORM 1; END $$
-- standby: ok
-- why: DO is opaque; a block that writes nothing runs on a standby
----

######## Writes: DDL

-- label: write
CREATE TABLE t1 (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary table would live on whichever primary connection ran it, which the serving node retires
CREATE TEMP TABLE tmp (id int)
----
-- label: write
CREATE TABLE IF NOT EXISTS t2 (id int PRIMARY KEY, "select" text)
----
-- label: write
CREATE TABLE t3 AS SELECT * FROM users
----
-- label: write
CREATE UNLOGGED TABLE t4 (x int)
----
-- label: write
CREATE INDEX ON users (name)
----
-- label: write
CREATE UNIQUE INDEX IF NOT EXISTS items_sku ON items (sku)
----
-- label: write
CREATE INDEX CONCURRENTLY users_age_idx ON users (age)
-- run: autocommit
----
-- label: write
CREATE VIEW v1 AS SELECT 1 AS x
----
-- label: write
CREATE OR REPLACE VIEW active_users AS SELECT * FROM users WHERE deleted_at IS NULL
----
-- label: write
CREATE MATERIALIZED VIEW mv2 AS SELECT count(*) FROM users
----
-- label: write
CREATE SEQUENCE seq2
----
-- label: write
CREATE SCHEMA s2
----
-- label: write
CREATE TYPE color AS ENUM ('red', 'green')
----
-- label: write
CREATE DOMAIN posint AS int CHECK (VALUE > 0)
----
-- label: write
CREATE FUNCTION f1() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$
----
-- label: write
CREATE OR REPLACE FUNCTION f2() RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO audit (msg) VALUES ('f2');
  COMMIT;
END
$fn$
----
-- label: write
CREATE FUNCTION f3(a int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;
  SELECT a + 1;
END
----
-- label: write
CREATE OR REPLACE PROCEDURE p2(m text) LANGUAGE sql
BEGIN ATOMIC
  INSERT INTO audit (msg) VALUES (m);
  DELETE FROM audit WHERE msg = 'x';
END
----
-- label: write
CREATE EXTENSION IF NOT EXISTS plpgsql
----
-- label: write
CREATE ROLE r1
----
-- label: write
CREATE USER u1 WITH PASSWORD 'secret; DROP'
----
-- label: write
CREATE DATABASE db1
-- run: autocommit
----
-- label: write
CREATE POLICY p ON users USING (true)
----
-- label: write
CREATE PUBLICATION pub FOR TABLE users
----
-- label: write
CREATE TABLE "select" ("from" int)
----
-- label: write
ALTER TABLE users ADD COLUMN x int
----
-- label: write
ALTER TABLE users RENAME COLUMN "update" TO upd
----
-- label: write
ALTER TABLE café ADD COLUMN ünï int
----
-- label: write
ALTER SEQUENCE seq RESTART
----
-- label: write
ALTER ROLE postgres SET work_mem = '8MB'
----
-- label: write
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC
----
-- label: write
DROP TABLE IF EXISTS nope
----
-- label: write
DROP TABLE users CASCADE
----
-- label: write
DROP INDEX users_email_idx
----
-- label: write
DROP FUNCTION add_one(bigint)
----
-- label: write
DROP SCHEMA app CASCADE
----
-- label: write
DROP MATERIALIZED VIEW order_totals
----
-- label: write
DROP SEQUENCE seq
----
-- label: write
DROP TABLE "Weird Table"
----
-- label: write
DROP DATABASE IF EXISTS nope
-- run: autocommit
----
-- label: write
COMMENT ON TABLE users IS 'people'
----
-- label: write
SECURITY LABEL ON TABLE users IS 'secret'
----
-- label: write
REFRESH MATERIALIZED VIEW order_totals
----
-- label: write
REFRESH MATERIALIZED VIEW CONCURRENTLY order_totals
----
-- label: write
GRANT SELECT ON users TO PUBLIC
----
-- label: write
REVOKE ALL ON users FROM PUBLIC
----
-- label: write
GRANT USAGE ON SCHEMA app TO postgres
----
-- label: write
REASSIGN OWNED BY postgres TO postgres
----
-- label: write
IMPORT FOREIGN SCHEMA remote FROM SERVER nope INTO app
----

######## Writes: maintenance, LOCK, NOTIFY

-- label: write
VACUUM
-- run: autocommit
----
-- label: write
VACUUM users
-- run: autocommit
----
-- label: write
VACUUM (VERBOSE, ANALYZE) users
-- run: autocommit
----
-- label: write
ANALYZE
----
-- label: write
ANALYZE users
----
-- label: write
analyse users
----
-- label: write
CLUSTER users USING users_pkey
----
-- label: write
REINDEX TABLE users
----
-- label: write
REINDEX INDEX users_pkey
----
-- label: write
CHECKPOINT
-- standby: ok
-- why: on a standby CHECKPOINT makes a restartpoint; the app means the primary's checkpoint
----
-- label: write
LOCK TABLE users
----
-- label: write
LOCK users IN SHARE MODE
----
-- label: write
LOCK TABLE users IN ACCESS SHARE MODE
-- standby: ok
-- why: a standby grants locks up to ROW EXCLUSIVE; they would not exclude the primary's writers
----
-- label: write
LOCK TABLE users IN ROW EXCLUSIVE MODE
-- standby: ok
-- why: a standby grants locks up to ROW EXCLUSIVE; they would not exclude the primary's writers
----
-- label: write
NOTIFY chan
----
-- label: write
NOTIFY chan, 'payload'
----

######## Writes: COPY FROM, COPY of DML

-- label: write
COPY audit (msg) FROM '/dev/null'
----
-- label: write
COPY audit FROM STDIN
----
-- label: write
copy users (name) from '/dev/null' with (format csv)
----
-- label: write
COPY (INSERT INTO audit (msg) VALUES ('c') RETURNING id) TO '/dev/null'
----
-- label: write
COPY (DELETE FROM audit RETURNING *) TO STDOUT
----

######## Writes: EXPLAIN ANALYZE of writes

-- label: write
EXPLAIN ANALYZE INSERT INTO audit (msg) VALUES ('e')
----
-- label: write
EXPLAIN (ANALYZE) DELETE FROM audit
----
-- label: write
EXPLAIN (ANALYZE true, FORMAT JSON) UPDATE users SET age = age
----
-- label: write
EXPLAIN (ANALYZE on) DELETE FROM audit
----
-- label: write
EXPLAIN (analyze 1) DELETE FROM audit
----
-- label: write
EXPLAIN (ANALYZE 'true') DELETE FROM audit
----
-- label: write
EXPLAIN (FORMAT TEXT, ANALYZE) DELETE FROM audit
----
-- label: write
EXPLAIN (ANALYZE off, ANALYZE on) DELETE FROM audit
----
-- label: write
explain analyse delete from audit
----
-- label: write
EXPLAIN ANALYZE VERBOSE UPDATE users SET age = age
----
-- label: write
EXPLAIN ANALYZE SELECT * FROM users FOR UPDATE
----
-- label: write
EXPLAIN ANALYZE SELECT nextval('seq')
----
-- label: write
EXPLAIN ANALYZE WITH d AS (DELETE FROM audit RETURNING 1) SELECT * FROM d
----
-- label: write
EXPLAIN ANALYZE CREATE TABLE t5 AS SELECT 1
----
-- label: write
EXPLAIN ANALYZE MERGE INTO items i USING users u ON i.id = u.id WHEN MATCHED THEN DELETE
----

######## Writes: PREPARE of a write, multiple statements, garbage

-- label: write
PREPARE ins(text) AS INSERT INTO audit (msg) VALUES ($1)
-- standby: ok
-- why: PREPARE only parses and plans; the EXECUTE would be refused
----
-- label: write
PREPARE d AS DELETE FROM audit; EXECUTE d
----
-- label: write
PREPARE q AS SELECT * FROM users FOR UPDATE; EXECUTE q
----
-- label: write
SELECT 1; INSERT INTO audit (msg) VALUES ('m')
----
-- label: write
INSERT INTO audit (msg) VALUES ('m'); SELECT 1
----
-- label: write
SET search_path = public; DELETE FROM audit
----
-- label: write
SELECT 'x;y'; DELETE FROM audit
----
-- label: write
SELECT $$;$$; UPDATE users SET age = 1; -- trailing comment
----
-- label: write
SELECT user_count(); DELETE FROM audit
----
-- label: write
FROBNICATE the database
-- standby: error
-- why: not SQL; a Write so that the primary reports the syntax error
----
-- label: write
)))
-- standby: error
-- why: not SQL
----
-- label: write
$$unterminated
-- standby: error
-- why: not SQL
----
-- label: write
\d users
-- standby: error
-- why: a psql command, not SQL
----
-- label: write
'just a string'
-- standby: error
-- why: not SQL
----
-- label: read
SELECT 'unterminated
-- standby: error
-- why: unterminated string: a syntax error everywhere, and still only a SELECT
----
-- label: read
SELECT 1 /* unterminated comment
-- standby: error
-- why: unterminated comment: a syntax error everywhere, and still only a SELECT
----
-- label: write
START nothing
-- standby: error
-- why: START without TRANSACTION is not SQL
----

######## Session

-- label: session
-- standby: ok
SET search_path TO app, public
----
-- label: session
-- standby: ok
SET LOCAL statement_timeout = '1s'
----
-- label: session
-- standby: ok
SET TIME ZONE 'UTC'
----
-- label: session
-- standby: ok
set application_name = 'x; DELETE FROM users'
----
-- label: session
-- standby: ok
SET work_mem TO DEFAULT
----
-- label: session
-- standby: ok
SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY
----
-- label: session
-- standby: ok
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
----
-- label: session
-- standby: refused
SET TRANSACTION READ WRITE
----
-- label: session
-- standby: ok
SET ROLE postgres
----
-- label: session
-- standby: ok
SET SESSION AUTHORIZATION postgres
----
-- label: session
-- standby: ok
SET CONSTRAINTS ALL DEFERRED
----
-- label: session
-- standby: ok
RESET ALL
----
-- label: session
-- standby: ok
RESET search_path
----
-- label: session
-- standby: ok
-- run: autocommit
DISCARD ALL
----
-- label: session
-- standby: ok
DISCARD TEMP
----
-- label: session
-- standby: ok
DEALLOCATE ALL
----
-- label: session
-- standby: ok
LOAD 'plpgsql'
----
-- label: session
-- standby: ok
DECLARE c CURSOR FOR SELECT 1; CLOSE c
----
-- label: session
-- standby: ok
CLOSE ALL
----
-- label: session
-- standby: ok
SET search_path = public; SELECT 1
----
-- label: session
-- standby: ok
PREPARE p AS SELECT 1; DEALLOCATE p
----

######## Transaction control

-- label: txcontrol
BEGIN
----
-- label: txcontrol
begin
----
-- label: txcontrol
BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ
----
-- label: txcontrol
BEGIN READ ONLY
----
-- label: txcontrol
START TRANSACTION
----
-- label: txcontrol
start transaction read write
----
-- label: txcontrol
COMMIT
----
-- label: txcontrol
COMMIT WORK
----
-- label: txcontrol
END
----
-- label: txcontrol
ROLLBACK
----
-- label: txcontrol
ABORT
----
-- label: txcontrol
SAVEPOINT sp1
----
-- label: txcontrol
RELEASE SAVEPOINT sp1
----
-- label: txcontrol
RELEASE sp1
----
-- label: txcontrol
ROLLBACK TO SAVEPOINT sp1
----
-- label: txcontrol
ROLLBACK TO sp1
----
-- label: txcontrol
PREPARE TRANSACTION 'gid'
----
-- label: txcontrol
COMMIT PREPARED 'gid'
----
-- label: txcontrol
ROLLBACK PREPARED 'gid'
----
-- label: txcontrol
COMMIT AND CHAIN
----
-- label: txcontrol
BEGIN; SELECT 1
----
-- label: txcontrol
SELECT 1; COMMIT
----
-- label: txcontrol
COMMIT; BEGIN
----
-- label: txcontrol
BEGIN; BEGIN; COMMIT
----
-- label: txcontrol
BEGIN; INSERT INTO audit (msg) VALUES ('x'); PREPARE TRANSACTION 'x'
----
-- label: txcontrol
BEGIN; SELECT 1; COMMIT AND CHAIN
----
-- label: txcontrol
SAVEPOINT a; SELECT 1; RELEASE a
----

######## Complete BEGIN … COMMIT blocks take the class of their contents

-- label: read
-- run: autocommit
BEGIN; SELECT 1; COMMIT
----
-- label: read
-- run: autocommit
begin; rollback
----
-- label: read
-- run: autocommit
START TRANSACTION READ ONLY; SELECT * FROM users; SELECT * FROM orders; END
----
-- label: write
-- run: autocommit
BEGIN; INSERT INTO audit (msg) VALUES ('b'); COMMIT
----
-- label: write
-- run: autocommit
START TRANSACTION; UPDATE users SET age = 1; SAVEPOINT a; DELETE FROM audit; ROLLBACK TO a; COMMIT
----
-- label: unsure
-- standby: ok
-- run: autocommit
BEGIN; SELECT user_count(); END
----
-- label: session
-- standby: ok
-- run: autocommit
BEGIN; SET LOCAL work_mem = '8MB'; SELECT 1; COMMIT
----

######## LISTEN and UNLISTEN

-- label: sessionbound
-- bound: listen
-- standby: refused
-- why: notifications are only delivered to sessions on the primary, and a pooled primary connection is not the caller's
LISTEN chan
----
-- label: session
-- standby: ok
UNLISTEN *
----
-- label: session
-- standby: ok
UNLISTEN chan
----
-- label: sessionbound
-- bound: listen
-- standby: refused
-- why: notifications are only delivered to sessions on the primary, and a pooled primary connection is not the caller's
listen "Mixed Case"
----
-- label: sessionbound
-- bound: listen
-- standby: refused
-- why: notifications are only delivered to sessions on the primary, and a pooled primary connection is not the caller's
SELECT 1; LISTEN x
----
-- label: sessionbound
-- bound: listen
-- standby: refused
-- why: notifications are only delivered to sessions on the primary, and a pooled primary connection is not the caller's
LISTEN x; INSERT INTO audit (msg) VALUES ('l')
----
-- label: sessionbound
-- bound: listen
-- standby: refused
-- run: autocommit
-- why: a LISTEN committed in a block still outlives it, on a session that is not the caller's
BEGIN; LISTEN x; COMMIT
----

######## Statements whose text holds semicolons that do not end them

-- label: write
CREATE RULE audit_dup AS ON INSERT TO items DO ALSO (INSERT INTO audit (msg) VALUES ('rule'); NOTIFY items)
----
-- label: write
CREATE FUNCTION f4(a int) RETURNS int LANGUAGE sql
BEGIN ATOMIC
  SELECT 1;
  SELECT CASE a WHEN 1 THEN 2 END;
  SELECT a;
END; SELECT 1
----

######## Session-bound: advisory locks (issue 9 §4)
# A session advisory lock is the caller's only while it holds the session.
# In a replica region's autocommit neither place can keep it for the
# caller: the standby grants it (pg_locks shows it, and the oracle checks)
# but no primary session ever sees it, and forwarded it would be taken on a
# pooled primary connection that the serving node retires. Transaction-
# scoped locks (pg_advisory_xact_lock…) end with their statement and stay
# Writes.

-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it; forwarded in autocommit it would vanish with the retired connection
SELECT pg_try_advisory_lock(42)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it; forwarded in autocommit it would vanish with the retired connection
SELECT pg_advisory_lock_shared(7)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it; forwarded in autocommit it would vanish with the retired connection
SELECT pg_try_advisory_lock_shared(7, 8)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- why: releases a lock of whichever session runs it, never one the caller holds
SELECT pg_advisory_unlock(1)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- why: releases a lock of whichever session runs it, never one the caller holds
SELECT pg_advisory_unlock_shared(1)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a quoted name is still the builtin; the standby grants the lock
SELECT "pg_advisory_lock"(3)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a Unicode-escaped name is still the builtin; the standby grants the lock
SELECT U&"pg_advisory_lock"(4)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: U&"…" UESCAPE decodes to pg_advisory_lock; the standby grants the lock
SELECT U&"pg!005fadvisory!005flock" UESCAPE '!' (5)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it
SELECT pg_catalog."pg_try_advisory_lock"(6)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it
SELECT pg_try_advisory_lock(id) FROM users WHERE id = 1
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- why: taken and released in one statement, but forwarded it would still ride a pooled connection; no caller needs this
SELECT pg_advisory_lock(1), pg_advisory_unlock(1)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it
WITH l AS (SELECT pg_try_advisory_lock(11) AS ok) SELECT * FROM l
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a standby grants it, but no primary session sees it
SELECT * FROM pg_advisory_lock(12)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- run: autocommit
-- why: a session lock taken in a block outlives its COMMIT
BEGIN; SELECT pg_advisory_lock(10); COMMIT
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: EXPLAIN ANALYZE runs the query, and the standby grants the lock
EXPLAIN ANALYZE SELECT pg_advisory_lock(13)
----
-- label: read
EXPLAIN SELECT pg_advisory_lock(14)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- why: PREPARE takes nothing, but its EXECUTE would take the lock on the standby
PREPARE lk(bigint) AS SELECT pg_advisory_lock($1)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- why: DECLARE takes nothing, but its FETCH would take the lock on the standby
DECLARE c CURSOR FOR SELECT pg_try_advisory_lock(15)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: COPY runs the query, and the standby grants the lock
COPY (SELECT pg_try_advisory_lock(16)) TO '/dev/null'
----
-- label: sessionbound
-- bound: advisory lock
-- standby: refused
-- why: forwarded, the lock would be taken on a pooled primary connection and vanish with it
SELECT * FROM users WHERE pg_try_advisory_lock(id) ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
----
-- label: sessionbound
-- bound: advisory lock
-- standby: refused
-- why: forwarded, the lock would be taken on a pooled primary connection and vanish with it
INSERT INTO audit (msg) SELECT 'x' WHERE pg_try_advisory_lock(9)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: refused
-- why: forwarded, the lock would be taken on a pooled primary connection and vanish with it
UPDATE users SET age = age WHERE pg_try_advisory_lock(id)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: refused
-- why: forwarded, the lock would be taken on a pooled primary connection and vanish with it
SELECT nextval('seq'), pg_advisory_lock(2)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: the block runs on the standby and takes the lock there; forwarded, the lock would vanish with the retired connection
DO $$ BEGIN PERFORM pg_advisory_lock(17); END $$
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: dynamic SQL in the block takes the lock on the standby
DO $$ BEGIN EXECUTE 'SELECT pg_advisory_lock(18)'; END $$
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: the block takes the lock on the standby
DO 'BEGIN PERFORM pg_try_advisory_lock(19); END'
----
-- label: write
-- standby: ok
-- why: DO is opaque; a transaction-scoped lock works on a standby but would not exclude the primary's holders
DO $$ BEGIN PERFORM pg_advisory_xact_lock(20); END $$
----
-- label: write
-- standby: ok
-- why: a standby grants it, but it would not exclude the primary's holders; it ends with the statement's transaction
SELECT pg_try_advisory_xact_lock(21)
----
-- label: write
-- standby: ok
-- why: a standby grants it, but it would not exclude the primary's holders; it ends with the statement's transaction
SELECT pg_catalog.pg_advisory_xact_lock_shared(22)
----

######## Session-bound: sequence state

-- label: sessionbound
-- bound: sequence state
-- standby: error
-- why: lastval reads what nextval left in the session: 55000 on a fresh one, another caller's value on a pooled primary connection
SELECT lastval()
----
-- label: sessionbound
-- bound: sequence state
-- standby: error
-- why: currval reads what nextval left in the session: 55000 on a fresh one, another caller's value on a pooled primary connection
SELECT currval(pg_get_serial_sequence('users', 'id'))
----
-- label: sessionbound
-- bound: sequence state
-- standby: refused
-- why: the forwarded INSERT would read another caller's currval on a pooled primary connection
INSERT INTO orders (user_id) VALUES (currval('users_id_seq'))
----
-- label: sessionbound
-- bound: sequence state
-- standby: refused
-- why: the INSERT's default need not call nextval, so currval may still read another caller's value; RETURNING says it for sure
INSERT INTO users (name) VALUES ('x'); SELECT currval('users_id_seq')
----
-- label: sessionbound
-- bound: sequence state
-- standby: refused
-- why: a textual nextval first does not prove it runs first (or at all) on the session
SELECT nextval('seq'), currval('seq')
----
-- label: read
EXPLAIN SELECT currval('seq')
----

######## Session-bound: temporary objects

-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE TEMPORARY TABLE t_tmp (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE LOCAL TEMP TABLE t_tmp2 (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE GLOBAL TEMPORARY TABLE t_tmp3 (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
create temp table if not exists t_tmp4 (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE TEMP TABLE t_tmp5 AS SELECT * FROM users
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE TEMP VIEW v_tmp AS SELECT 1 AS one
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE OR REPLACE TEMPORARY VIEW v_tmp2 AS SELECT 1 AS one
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE TEMP SEQUENCE s_tmp
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary object would live on whichever primary connection ran it, which the serving node retires
CREATE TEMP TABLE t_tmp6 (id int) ON COMMIT DELETE ROWS
----
-- label: sessionbound
-- bound: temporary object
-- standby: error
-- why: the issue's fragment as written is a syntax error; CREATE TABLE pg_temp.x (…) is the statement it means
CREATE TABLE pg_temp.x
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: pg_temp is the session's temporary schema: the table is temporary
CREATE TABLE pg_temp.x (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: pg_temp is the session's temporary schema: the table is temporary
CREATE TABLE IF NOT EXISTS "pg_temp".y (id int)
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: pg_temp is the session's temporary schema: the view is temporary
CREATE VIEW pg_temp.v AS SELECT 1 AS one
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: pg_temp is the session's temporary schema: the function is temporary
CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary table would live on whichever primary connection ran it, which the serving node retires
SELECT * INTO TEMPORARY t_into FROM users
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the temporary table would live on whichever primary connection ran it, which the serving node retires
SELECT * INTO LOCAL TEMP TABLE t_into2 FROM users
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: pg_temp is the session's temporary schema: the table is temporary
SELECT * INTO pg_temp.t_into3 FROM users
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: EXPLAIN ANALYZE runs the CREATE TABLE AS
EXPLAIN ANALYZE CREATE TEMP TABLE t_ea AS SELECT 1 AS one
----
-- label: read
-- standby: refused
-- why: nothing executes, but naming pg_temp makes the standby create the session's temporary schema, which it refuses with 25006 (so the driver explains it on the primary)
EXPLAIN CREATE TABLE pg_temp.t_e AS SELECT 1 AS one
----
-- label: sessionbound
-- bound: temporary object
-- standby: refused
-- why: the block creates a temporary table, which would live on a retired primary connection
DO $$ BEGIN CREATE TEMP TABLE t_do (id int); END $$
----
-- label: write
SELECT * INTO TABLE temp FROM users
----
-- label: write
INSERT INTO temp (id) VALUES (1)
----
-- label: read
SELECT * FROM temp
----
-- label: write
CREATE UNLOGGED TABLE t_unl (id int)
----
-- label: write
CREATE TEMP TABLE t_ocd (id int) ON COMMIT DROP
----
-- label: write
-- run: autocommit
BEGIN; CREATE TEMP TABLE t_blk (id int) ON COMMIT DROP; INSERT INTO t_blk VALUES (1); INSERT INTO audit (msg) SELECT 'b' FROM t_blk; COMMIT
----
-- label: write
CREATE FUNCTION mk_tmp() RETURNS void LANGUAGE sql AS 'CREATE TEMP TABLE t_fn (id int)'
----
-- label: write
CREATE VIEW v_pl AS SELECT lastval() AS l
----

######## Session-bound: LISTEN inside a block

-- label: sessionbound
-- bound: listen
-- standby: refused
-- why: notifications are only delivered to sessions on the primary, and a pooled primary connection is not the caller's
DO $$ BEGIN LISTEN chan; END $$
----
-- label: session
-- standby: ok
UNLISTEN "Mixed Case"
----

######## Session: set_config and setseed in a read (issue 9 §4)
# They change only the session they run in: on the caller's local
# connection, as pgx would run them on its session. In a write they set
# Has(Session), so the serving node does not pool the primary connection.

-- label: session
-- standby: ok
SELECT set_config('app.tenant','A',false)
----
-- label: session
-- standby: ok
SELECT set_config('app.tenant', 'A', false), count(*) FROM users
----
-- label: session
-- standby: ok
SELECT pg_catalog.set_config('app.tenant', 'B', false)
----
-- label: session
-- standby: ok
SELECT setseed(0.5)
----
-- label: unsure
-- standby: ok
SELECT set_config('app.tenant', 'D', false), add_one(1)
----
-- label: write
INSERT INTO audit (msg) VALUES (set_config('app.tenant', 'C', false))
----
-- label: write
-- standby: ok
-- why: DO is opaque; a block that only sets a setting runs on a standby
DO $$ BEGIN SET search_path = public; END $$
----
-- label: write
-- standby: ok
-- why: DO is opaque; a block that only sets a setting runs on a standby
DO $$ BEGIN PERFORM set_config('app.tenant', 'E', false); END $$
----

######## Lexer: where PostgreSQL ends a string, comment or identifier (issue 9 §4)
# Each record that hides pg_try_advisory_lock(42) behind quoting says, with
# -- holds, whether the standby really called it: the oracle checks that
# the classifier agrees with PostgreSQL's own lexer.

-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: the newline continues E'a' as an escape string, so \' is a quote and the call is real
SELECT E'a'
'\'', pg_try_advisory_lock(42) --'
----
-- label: read
SELECT 'a'
'\'', pg_try_advisory_lock(42) --'
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- strings: nonstandard
-- why: with standard_conforming_strings off the continued plain string takes \' too, and the call is real
SELECT 'a'
'\'', pg_try_advisory_lock(42) --'
----
-- label: read
SELECT 'a\'', pg_try_advisory_lock(42) --'
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- strings: nonstandard
-- why: with standard_conforming_strings off \' is a quote, and the call is real
SELECT 'a\'', pg_try_advisory_lock(42) --'
----
-- label: read
SELECT N'\'', pg_try_advisory_lock(42) --'
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- strings: nonstandard
-- why: N'…' follows standard_conforming_strings like a plain string
SELECT N'\'', pg_try_advisory_lock(42) --'
----
-- label: read
-- standby: error
-- why: under standard_conforming_strings on, 'it\' is a string and s' starts another: a syntax error
SELECT 'it\'s', pg_try_advisory_lock(42) --'
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- strings: nonstandard
-- why: with standard_conforming_strings off \' is a quote, and the call is real
SELECT 'it\'s', pg_try_advisory_lock(42) --'
----
-- label: read
-- strings: nonstandard
SELECT E'\\', 'x; DELETE FROM users'
----
-- label: read
SELECT 'a' -- a comment before the newline
'b' AS x
----
-- label: read
SELECT 'a'
-- a comment line between
'b' AS x
----
-- label: read
SELECT 'a'

   'b'   
'c' AS x
----
-- label: read
-- standby: error
-- why: a /* comment */ does not continue a string: two constants in a row are a syntax error
SELECT 'a' /* c */
'b' AS x
----
-- label: read
-- standby: error
-- why: without a newline two strings do not join: a syntax error
SELECT 'a' 'b' AS x
----
-- label: read
SELECT B'01'
'10' AS bits, X'0f'
'f0' AS hex
----
-- label: read
SELECT U&'\0041'
'\0042' AS u
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: the continued string ends before the call
SELECT 'a'
'b', pg_try_advisory_lock(42)
----
-- label: read
SELECT U&'\0027, pg_try_advisory_lock(42) --'
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a backslash in U&'…' escapes nothing the lexer sees, so the string ends at the second quote
SELECT U&'\' UESCAPE '!', pg_try_advisory_lock(42)
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: a$$ is an identifier, not the start of a dollar quote
SELECT 1 AS a$$, pg_try_advisory_lock(42) --$$
----
-- label: read
SELECT 1 /* /* */ , pg_try_advisory_lock(42) */
----
-- label: read
SELECT 1 /*/ , pg_try_advisory_lock(42) */
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: the comment ends before the call
SELECT 1 /**/, pg_try_advisory_lock(42)
----
-- label: read
SELECT $a$ $b$ , pg_try_advisory_lock(42) $a$
----
-- label: sessionbound
-- bound: advisory lock
-- standby: ok
-- holds: advisory lock
-- why: the dollar quote ends at its own tag
SELECT $a$x$a$ AS y, pg_try_advisory_lock(42) -- $a$
----
-- label: sessionbound
-- bound: advisory lock
-- standby: error
-- why: PostgreSQL 15 and later reject the trailing junk, but 14 and earlier read 1 FROM and take the lock
SELECT 1FROM pg_try_advisory_lock(42)
----
