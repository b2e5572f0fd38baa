package flypg

import (
	"context"
	"errors"
)

func (n *Node) startCluster(ctx context.Context) error {
	return errors.New("flypg: multi-region mode is not available in this build")
}

func (n *Node) stopCluster() error { return nil }

// WaitReady waits until the node can serve writes: a primary-region node is
// known and reachable, or this node is one. In dev mode it returns at once.
func (n *Node) WaitReady(ctx context.Context) error { return nil }

// GossipAddr is the memberlist address the node bound ("" in dev mode).
func (n *Node) GossipAddr() string { return "" }

// RPCAddr is the write-link address the node listens on ("" in dev mode).
func (n *Node) RPCAddr() string { return "" }
