package flypg

import "context"

// SetAfterCommit installs a fault-injection hook on n's server: f runs
// after each forwarded write n serves committed, before its commit
// position is read.
func SetAfterCommit(n *Node, f func(context.Context)) { n.server.SetAfterCommit(f) }
