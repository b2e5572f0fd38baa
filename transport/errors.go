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
