package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/flypg/flypg/transport"
)

// Two nodes in two regions: the replica-region node ships a request to the
// primary region and gets the answer back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := transport.Config{
		GossipAddr: "127.0.0.1:0",
		RPCAddr:    "127.0.0.1:0",
		Secret:     []byte("shared cluster secret"),
		Profile:    transport.ProfileLocal,
		Logger:     slog.New(slog.DiscardHandler),
	}

	primaryCfg := base
	primaryCfg.NodeName, primaryCfg.Region = "iad-1", "iad"
	primaryCfg.Primary = func() bool { return true } // e.g. !pg_is_in_recovery()
	primary, err := transport.Start(ctx, primaryCfg, transport.HandlerFunc(
		func(ctx context.Context, req *transport.Request) ([]byte, error) {
			return fmt.Appendf(nil, "%s ran %q for %s", "iad-1", req.Body, req.Peer), nil
		}))
	if err != nil {
		panic(err)
	}
	defer primary.Close()

	replicaCfg := base
	replicaCfg.NodeName, replicaCfg.Region = "lhr-1", "lhr"
	replicaCfg.PrimaryRegion = "iad"
	replicaCfg.Join = []string{primary.GossipAddr()}
	replica, err := transport.Start(ctx, replicaCfg, transport.HandlerFunc(
		func(ctx context.Context, req *transport.Request) ([]byte, error) { return nil, nil }))
	if err != nil {
		panic(err)
	}
	defer replica.Close()

	if err := replica.WaitPrimary(ctx); err != nil {
		panic(err)
	}
	node, resp, err := replica.CallPrimary(ctx, "exec", []byte("INSERT …"))
	if err != nil {
		panic(err)
	}
	fmt.Println(node+":", string(resp))
	// Output: iad-1: iad-1 ran "INSERT …" for lhr-1
}
