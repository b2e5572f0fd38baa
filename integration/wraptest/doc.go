// Package wraptest proves that database/sql instrumentation wrapped around
// flypg keeps its routing and read-your-writes: github.com/XSAM/otelsql
// (OpenDB on a node's connector, Open on the driver name, WrapDriver) and
// github.com/ngrok/sqlmw (an interceptor driver). Through each wrapper,
// reads still run on the local replica, writes still go to the primary and
// wait for replay, and the wrapper still sees every call.
//
// The package has no code of its own: its tests and Examples are the
// recipes of docs/orm.md.
package wraptest
