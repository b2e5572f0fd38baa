// Package transport moves opaque request and response bodies between the
// nodes of a flypg cluster. It knows nothing about SQL: the root package
// builds statement forwarding, RegisterProc, CallPrimary and CallRegion on
// top of it.
//
// # Membership
//
// Nodes find each other with hashicorp/memberlist. Each node advertises a
// small Meta (region, link address, the protocol versions it speaks, whether
// its local database is the primary, and the databases it serves with their
// role). Gossip is encrypted with a key derived from the cluster secret
// (keys derived from Config.PreviousSecrets decrypt too, for rotation) and
// carries a cleartext cluster label from the app's name, so two apps never
// merge. A node joins through Config.Join or Config.JoinDNS (AAAA and A
// records, as <app>.internal on Fly.io) and keeps retrying in the
// background, with backoff, until it has company — and again whenever it
// finds itself alone, which is how a partition heals.
//
// By default the listeners bind every address, IPv6 first ("[::]"), and
// advertise a concrete one: $FLY_PRIVATE_IP, else fly-local-6pn, else the
// first global unicast address of an up interface (Config.AdvertiseGossipAddr
// overrides it).
//
// Membership decides where new requests go; it does not cut links. A node
// membership declares dead while our link to it is healthy (gossip lost, the
// network fine) keeps its link, and requests pinned to it by name (Call,
// Open) still use it, until the link itself fails its keep-alives.
// Selectors see such a node ranked last.
//
// # Link
//
// Requests travel over a persistent TCP connection that a node dials lazily,
// on its first call to a peer, and then reuses. Links are per direction: if
// A calls B and B calls A there are two connections, each owned by its
// dialler. Many requests are in flight on one link at once and responses
// come back in any order.
//
// The connection is TLS 1.3 (Config.InsecurePlaintext turns it off, for
// labs), with a certificate each node makes for itself at start and peers
// do not verify: authentication is the handshake below, bound to the TLS
// session. Inside TLS, every frame is a 4-byte big-endian length followed by
// that many bytes of one msgpack array, the envelope:
//
//	[type uint8, id uint64, method string, timeout int64 (ns), n int64, body bin]
//
// type is one of hello, challenge, auth, welcome (the handshake), request,
// request part, response part, response, error, reject, cancel, credit,
// ping, pong and goaway. id matches a response to its request. timeout is the
// time the caller had left when it sent the request (a duration, so clocks
// need not agree); the server runs the handler under that deadline. On error
// and reject frames, method holds an error kind and body the message. No
// frame exceeds Config.MaxFrameSize, and every declared length is checked
// against the bytes that remain before anything is allocated.
//
// A request's n is its whole body's length: a body larger than a frame
// follows in request parts of at most Config.ChunkSize, and the handler runs
// once the last has arrived (within Config.MaxRequestSize and the server's
// Config.MaxInFlightBytes budget). A response is zero or more response parts
// (Request.Send) and a final response frame (the handler's return value).
// The server sends response bytes only against credit: the caller grants
// Config.StreamWindow bytes per stream in its hello and tops the stream up
// with credit frames as its consumer reads, so memory on both sides is
// bounded by the window, not by the response.
//
// # Authentication
//
// Before a connection serves anything both ends prove they hold the secret
// with SPAKE2 (RFC 9382) over edwards25519, with key confirmation:
//
//	client → server  hello     {name, versions min–max, limits, pA}
//	server → client  challenge {name, chosen version, limits, pB per secret, cB per secret}
//	client → server  auth      {j, cA}
//	server → client  welcome
//
// The password scalar comes from the secret by HKDF. The confirmations are
// bound to both node names, both version ranges and limits, and the TLS
// session's exported keying material, so a relay holding a TLS session with
// each side fails, and so does a reflection. Nothing on the wire lets anyone
// test a guess at the secret offline: an eavesdropper sees only TLS; a peer
// without the secret gets one online guess per connection. A client that
// verifies no cB sends no proof and hangs up. See docs/security.md.
//
// Before the handshake completes a peer may send only small frames, within
// Config.HandshakeTimeout; at most Config.MaxPreAuth connections
// (Config.MaxPreAuthPerSource per IP) may be handshaking at once, and when a
// cap is reached an existing one is closed — the least advanced (nothing
// received, then TLS not done), from the network holding the most, the
// oldest — so a flood pushes out its own connections rather than lock
// legitimate nodes out. The gossip port's streams, which memberlist reads
// whole before it can check their key, are evicted by the same rule, with
// fixed caps: 32 being read at once, 16 per address, 512 KiB each.
//
// # Versions
//
// Each node speaks a range of link protocol versions (MinProtocolVersion to
// ProtocolVersion), advertised in Meta and stated in the hello; two nodes
// link with the highest version both speak. A release speaks the version of
// the release before it too, so rolling upgrades always link. A member with
// no common version is skipped as not sent. Version 2 carries requests and
// responses of one frame; version 3 adds parts, streams and credit.
//
// # Outcomes
//
// A request that provably never reached the peer's handler (dial or
// handshake failure, refused by an overloaded or draining server, declined
// by the handler with ErrDecline, withdrawn before its last frame was
// written) fails with an error that wraps ErrNotSent, and CallSelect,
// CallPrimary and CallRegion move on to the next candidate. A request that
// was written but whose answer (or a stream's final part) never came fails
// with ErrUnknownOutcome and is never resent.
package transport
