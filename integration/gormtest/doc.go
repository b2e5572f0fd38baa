// Package gormtest proves GORM (gorm.io/gorm with gorm.io/driver/postgres)
// on flypg with the app in a replica region: both ways of opening it
// (DriverName "flypg" on the primary's URL, and Conn: node.OpenDB()), CRUD
// with read-your-writes while the replica's replay is delayed, transactions
// (remote, on the primary), TranslateError, PrepareStmt,
// SkipDefaultTransaction, FirstOrCreate, batches, row locks, associations,
// a 6 MiB blob and 80 concurrent transactions.
//
// The package has no code of its own: its tests and Examples are the
// recipes of docs/orm.md.
package gormtest
