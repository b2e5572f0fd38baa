package flypg

import "context"

type noAwaitKey struct{}

// NoAwait returns a context under which writes forwarded to the primary
// return as soon as the primary has committed them, without waiting for the
// local replica to replay them (fly_postgres's await: false). Use it when the
// caller does not read its own write next; it saves the replication lag.
func NoAwait(ctx context.Context) context.Context {
	return context.WithValue(ctx, noAwaitKey{}, true)
}

func noAwait(ctx context.Context) bool {
	v, _ := ctx.Value(noAwaitKey{}).(bool)
	return v
}
