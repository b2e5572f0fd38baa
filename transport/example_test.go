package transport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
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
		// The same on every node: `openssl rand -base64 32`.
		Secret:  []byte("ILjDLfvK9ibhOeRZ2xmUgGediVeyC3UyZtTVsvnDcx0="),
		Profile: transport.ProfileLocal,
		Logger:  slog.New(slog.DiscardHandler),
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

// A handler streams a large answer with Request.Send; the caller reads it
// part by part with Open, holding at most about one window in memory.
func ExampleTransport_Open() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := transport.Config{
		GossipAddr: "127.0.0.1:0",
		RPCAddr:    "127.0.0.1:0",
		Secret:     []byte("ILjDLfvK9ibhOeRZ2xmUgGediVeyC3UyZtTVsvnDcx0="),
		Profile:    transport.ProfileLocal,
		Logger:     slog.New(slog.DiscardHandler),
	}
	serverCfg := base
	serverCfg.NodeName = "iad-1"
	server, err := transport.Start(ctx, serverCfg, transport.HandlerFunc(
		func(ctx context.Context, req *transport.Request) ([]byte, error) {
			for i := range 3 {
				if err := req.Send(ctx, fmt.Appendf(nil, "row %d\n", i)); err != nil {
					return nil, err // the caller went away
				}
			}
			return []byte("done\n"), nil // the last part
		}))
	if err != nil {
		panic(err)
	}
	defer server.Close()

	clientCfg := base
	clientCfg.NodeName = "lhr-1"
	clientCfg.Join = []string{server.GossipAddr()}
	client, err := transport.Start(ctx, clientCfg, transport.HandlerFunc(
		func(ctx context.Context, req *transport.Request) ([]byte, error) { return nil, nil }))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	for len(client.Members()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}

	s, err := client.Open(ctx, "iad-1", "rows", nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	for {
		part, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Print(string(part))
	}
	// Output:
	// row 0
	// row 1
	// row 2
	// done
}

func ExampleValidateSecret() {
	fmt.Println(transport.ValidateSecret([]byte("ILjDLfvK9ibhOeRZ2xmUgGediVeyC3UyZtTVsvnDcx0=")))
	err := transport.ValidateSecret([]byte("hunter2"))
	fmt.Println(errors.Is(err, transport.ErrWeakSecret))
	// Output:
	// <nil>
	// true
}
