package flypg

import "context"

// SetAfterCommit installs a fault-injection hook on n's server: f runs
// after each forwarded write n serves committed, before its commit
// position is read.
func SetAfterCommit(n *Node, f func(context.Context)) { n.server.SetAfterCommit(f) }

// MarkNotPrimary makes n believe its own database is a standby until its
// next role check (tests set RoleCheckInterval long): what a demotion looks
// like to the node.
func MarkNotPrimary(n *Node) {
	st := *n.self.state.Load()
	st.primary = false
	n.self.state.Store(&st)
	n.publish()
}

// ServeProc runs the procedure registered as name on body as a serving node
// would when a request for it arrives, with no database.
func ServeProc(ctx context.Context, name string, body []byte) ([]byte, error) {
	return lookupProc(name)(ctx, nil, body)
}
