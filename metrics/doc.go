// Package metrics exports a flypg node's counters and state to Prometheus.
//
// The core package never imports client_golang; this one does. Register one
// collector per node and serve the registry:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.NewCollector(node))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The collector reads node.Stats() when scraped: it starts no goroutine and
// a statement pays nothing for being observed. Counters count since the
// node started. A scrape never fails because of what the node reports:
// names that are not valid UTF-8 are repaired, and a second database of an
// already used name gets "#2" appended to its database label.
//
// # Labels
//
// Every metric carries the constant labels node (Node.Name) and region
// (Node.Region); WithoutNodeLabels leaves them out for a scraper that labels
// its targets with their region itself, WithConstLabels adds more.
// Per-database metrics have a database label: the database's name. Metrics
// about other members of the cluster name them with peer (the member's
// node name) and peer_region (its region) — not region, which is this
// node's.
//
// # Metrics
//
// Statements and their outcomes (counters):
//   - flypg_forwarded_statements_total counter: statements sent to a
//     primary-region node; each statement of a remote transaction counts.
//   - flypg_local_statements_total counter: statements run on the local
//     database (a read the replica then refused counts here too).
//   - flypg_retried_reads_total counter: reads the local replica refused as
//     writes (SQLSTATE 25006) that were then forwarded.
//   - flypg_primary_reads_total counter: reads sent to the primary (OnPrimary,
//     AfterLSN not met locally, local database unreachable).
//   - flypg_awaits_total counter: committed writes that waited for the local
//     replica to replay them.
//   - flypg_awaits_skipped_total counter: committed writes that did not wait
//     (NoAwait, or a writable local database).
//   - flypg_await_timeouts_total counter: waits that failed (an AwaitError, or
//     success under AwaitTimeoutSucceed).
//   - flypg_committed_unknown_lsn_total counter: writes that committed but
//     whose commit position could not be read (CommittedError).
//   - flypg_unknown_outcomes_total counter: writes whose outcome is unknown
//     (ErrUnknownOutcome).
//
// Waits and the node:
//   - flypg_await_duration_p50_seconds gauge: median wait for replay since
//     the node started (from a log-scale histogram: overstated by up to
//     25%).
//   - flypg_await_duration_p99_seconds gauge: 99th percentile of the same.
//   - flypg_remote_transactions_serving gauge: remote transactions this node
//     is serving now, each holding a primary connection.
//   - flypg_node_info{primary_region} gauge: always 1; the node's primary
//     region (empty in dev mode).
//
// The local copy of each database, as of the node's last role check
// (Config.RoleCheckInterval):
//   - flypg_database_info{database, system_identifier} gauge: always 1; the
//     PostgreSQL cluster's system identifier (0 until known).
//   - flypg_database_role{database, role} gauge: 1 for the current role
//     (primary, standby, unreachable, unknown), 0 for the others.
//   - flypg_database_replay_lag_seconds{database} gauge: how long ago the
//     last transaction the standby replayed committed on the primary; it
//     grows on an idle primary too (pg_last_xact_replay_timestamp).
//   - flypg_database_receive_lag_bytes{database} gauge: WAL received but not
//     yet replayed.
//   - flypg_database_replayed_lsn_bytes{database} gauge: the standby's replay
//     position, as a byte offset into the WAL (rate() of it is the replay
//     throughput).
//   - flypg_database_primary_members{database} gauge: members advertising the
//     database's primary: 0 means writes fail with ErrNoPrimary, more than 1
//     a failover in progress (absent in dev mode).
//
// The LSN tracker of each database (see package lsn):
//   - flypg_tracker_waits_total{database} counter: waits for replay.
//   - flypg_tracker_immediate_waits_total{database} counter: waits satisfied
//     at once, without a query.
//   - flypg_tracker_wait_timeouts_total{database} counter: waits whose
//     context ended first.
//   - flypg_tracker_polls_total{database} counter: replay-position queries.
//   - flypg_tracker_wait_for_calls_total{database} counter: the polls that
//     were WAIT FOR LSN statements (PostgreSQL 19+).
//   - flypg_tracker_poll_errors_total{database} counter: failed polls and
//     connection attempts.
//   - flypg_tracker_reconnects_total{database} counter: connections opened
//     after one was lost.
//   - flypg_tracker_refreshes_total{database} counter: on-demand re-reads of
//     the replay position.
//   - flypg_tracker_signal_wakeups_total{database} counter: polls the
//     WAL-arrival signal triggered.
//   - flypg_tracker_signal_connects_total{database} counter: signal
//     replication connections that started streaming.
//   - flypg_tracker_signal_failures_total{database} counter: signal attempts
//     that failed or streams that broke.
//   - flypg_tracker_waiters{database} gauge: waits blocked now.
//   - flypg_tracker_signal_active{database} gauge: 1 while the signal
//     streams.
//   - flypg_tracker_mode{database, mode} gauge: 1 for how the tracker learns
//     of replay now (wait-for, signal, poll, primary), 0 for the others.
//   - flypg_tracker_wake_delay_p50_seconds{database} gauge: median time from
//     a poll's answer to the satisfied wait's return.
//   - flypg_tracker_wake_delay_p99_seconds{database} gauge: 99th percentile
//     of the same.
//
// The pool of primary connections that serves forwarded work (on a node
// whose copy is the primary; database/sql's sql.DBStats):
//   - flypg_serving_connections_max{database} gauge: the pool's bound
//     (Config.MaxServeConns; 0 until the pool opens).
//   - flypg_serving_connections_open{database} gauge: open connections.
//   - flypg_serving_connections_in_use{database} gauge: connections in use.
//   - flypg_serving_connections_idle{database} gauge: idle connections.
//   - flypg_serving_waits_total{database} counter: requests that waited for
//     a connection.
//   - flypg_serving_wait_duration_seconds_total{database} counter: total
//     time spent waiting for one.
//   - flypg_serving_connections_closed_total{database, reason} counter:
//     connections database/sql closed (max_idle, max_idle_time,
//     max_lifetime).
//
// The cluster:
//   - flypg_cluster_members gauge: live members as this node sees them,
//     itself included (0 in dev mode).
//   - flypg_link_rtt_seconds{peer, peer_region} gauge: round-trip time to a
//     peer, measured on the link to it (or by gossip probes before a link
//     exists); absent until measured.
//   - flypg_primary_member_info{database, peer, peer_region} gauge: 1 for
//     each member, this node included, advertising a database's primary.
//
// docs/metrics.md has the same list with PromQL for the usual alerts.
package metrics
