// Package transport moves opaque request and response bodies between the
// nodes of a flypg cluster. It knows nothing about SQL: the root package
// builds statement forwarding, RegisterProc, CallPrimary and CallRegion on
// top of it.
//
// # Membership
//
// Nodes find each other with hashicorp/memberlist. Each node advertises a
// small Meta (region, link address, protocol version, whether its local
// database is the primary). Gossip is encrypted with a key derived from the
// cluster secret and carries a cluster label, so two apps never merge. A
// node joins through Config.Join or Config.JoinDNS and keeps retrying in the
// background, with backoff, until it has company.
//
// # Link
//
// Requests travel over a persistent TCP connection (optionally TLS) that a
// node dials lazily, on its first call to a peer, and then reuses. Links are
// per direction: if A calls B and B calls A there are two connections, each
// owned by its dialler. Many requests are in flight on one link at once and
// responses come back in any order.
//
// Every frame is a 4-byte big-endian length followed by that many bytes of
// one msgpack array, the envelope:
//
//	[type uint8, id uint64, method string, timeout int64 (ns), body bin]
//
// type is one of hello, challenge, auth, welcome (the handshake), request,
// response, error, reject, cancel, ping, pong and goaway. id matches a
// response to its request. timeout is the time the caller had left when it
// sent the request (a duration, so clocks need not agree); the server runs
// the handler under that deadline. On error and reject frames, method holds
// an error kind and body the message.
//
// # Authentication
//
// Before a connection serves anything both ends prove they hold the secret,
// with an HMAC-SHA256 challenge–response over fresh 32-byte nonces from both
// sides:
//
//	client → server  hello     {version, client name, nonce_c}
//	server → client  challenge {version, server name, nonce_s ‖ MAC("server", …)}
//	client → server  auth      {MAC("client", …)}
//	server → client  welcome
//
// Each MAC covers the role, the protocol version, both names and both nonces,
// so a proof can be neither replayed on another connection nor reflected back
// to its author in the other role. Before the handshake completes a peer may
// send only tiny frames, within Config.HandshakeTimeout, and only a bounded
// number of connections may be handshaking at once; anything else is dropped.
//
// # Outcomes
//
// A request that provably never reached the peer (dial or handshake failure,
// refused by an overloaded or draining server, withdrawn before it was
// written) fails with an error that wraps ErrNotSent, and CallPrimary and
// CallRegion move on to the next candidate. A request that was written but
// whose answer never came fails with ErrUnknownOutcome and is never resent.
package transport
