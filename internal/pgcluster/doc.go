// Package pgcluster starts real PostgreSQL servers — one primary and any
// number of streaming hot-standby replicas — for flypg's tests and its lab.
//
// flypg's promises (reads on the replica, writes on the primary,
// read-your-writes through WAL replay) can only be checked against the real
// thing, so every test that touches a database runs against servers started
// here: initdb once per process (later clusters copy that template),
// pg_basebackup -R -X stream for each replica, each server on a free loopback
// port in its own temporary directory (in memory, under /dev/shm, where it can), run as the postgres OS user when the
// process is root (PostgreSQL refuses to run as root).
//
// Nothing is left behind: Stop removes the processes and the directory;
// ForTest registers Stop with t.Cleanup; an interrupt (^C) stops every
// running cluster before the process exits; and a start sweeps directories
// left by a process that was killed outright.
//
// The binaries are looked up in $FLYPG_PG_BIN, then $PATH, then the newest
// /usr/lib/postgresql/*/bin. When they are missing, Start fails with a message
// that says how to install them; tests fail rather than skip.
package pgcluster
