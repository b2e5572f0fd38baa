// Package wire defines the messages a replica-region node and a
// primary-region node exchange over the transport link, and the codec for
// SQL argument and result values inside them.
//
// Values cross the link with their exact Go type (int64 stays int64, a
// time.Time keeps its instant, monotonic-free, and its zone offset), because
// flypg promises that a forwarded statement returns what the wrapped driver
// returns locally. Anything that cannot be represented fails before a byte
// is sent, naming the Go type.
package wire
