// Package sqlxtest proves github.com/jmoiron/sqlx on flypg with the app in
// a replica region: the bind-type gotcha (sqlx picks its placeholder style
// by driver name and does not know "flypg") and its two fixes, then Get,
// Select, NamedExec, NamedQuery, In and transactions with read-your-writes
// while the replica's replay is delayed.
//
// The package has no code of its own: its tests and Examples are the
// recipes of docs/orm.md.
package sqlxtest
