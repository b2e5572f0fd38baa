package transport

import "errors"

var (
	// ErrNotSent marks a request that certainly did not reach the peer's
	// handler: it is safe to retry anywhere.
	ErrNotSent = errors.New("transport: request not sent")
	// ErrUnknownOutcome marks a request that was written to the link but
	// whose answer never arrived: it may or may not have run, so it must
	// not be retried silently.
	ErrUnknownOutcome = errors.New("transport: outcome unknown: link lost after the request was sent")
	// ErrNoPrimary is returned by CallPrimary and WaitPrimary when no
	// primary node could be reached before the deadline.
	ErrNoPrimary = errors.New("transport: no primary node reachable")
	// ErrNoNode is returned by CallRegion when no node of the region could
	// be reached before the deadline.
	ErrNoNode = errors.New("transport: no node reachable in region")
	// ErrClosed is returned for calls on, or cut short by, a closed
	// Transport.
	ErrClosed = errors.New("transport: closed")
	// ErrFrameTooLarge is returned when a request or response does not fit
	// in Config.MaxFrameSize.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrAuth is returned when a peer fails the mutual authentication,
	// typically because the two nodes hold different secrets.
	ErrAuth = errors.New("transport: authentication failed")
	// ErrIncompatible is returned when two nodes speak no common link
	// protocol version (see ProtocolVersion); requests to such a node are
	// not sent.
	ErrIncompatible = errors.New("transport: no common link protocol version")
	// ErrDecline is for handlers: a handler that returns an error wrapping
	// it, before it has sent any part of a response, declares that the
	// request is not for this node (say, its database stopped being the
	// primary). The caller sees an error wrapping ErrNotSent (and
	// ErrDecline) with the handler's message, and CallSelect tries the next
	// candidate. The handler must not have done anything the caller could
	// observe.
	ErrDecline = errors.New("transport: declined")
	// ErrWeakSecret is returned by ValidateSecret (and Start) for a secret
	// too short or too regular to key the cluster.
	ErrWeakSecret = errors.New("transport: weak cluster secret")
)

// RemoteError is an error returned by the remote Handler, or a panic it
// raised, carried back as text. A handler that needs typed errors encodes
// them in its response body instead.
type RemoteError struct {
	Message string
	// err is what errors.Is/As see through the RemoteError: the handler's
	// own error when the call never left this process (a node calling
	// itself); context.DeadlineExceeded or context.Canceled when a remote
	// handler gave up because the caller's deadline passed or it cancelled.
	err error
}

func (e *RemoteError) Error() string { return "transport: remote: " + e.Message }

// Unwrap returns the handler's original error for in-process calls; for
// remote ones, the context error if the handler failed because the caller's
// context ended, else nil.
func (e *RemoteError) Unwrap() error { return e.err }
