package flypg

import (
	"errors"
	"fmt"
	"time"

	"github.com/flypg/flypg/lsn"
)

var (
	// ErrAwaitTimeout is matched (errors.Is) by an *AwaitError: a write
	// committed on the primary but the local replica did not replay it in time.
	ErrAwaitTimeout = errors.New("flypg: timed out waiting for the local replica to replay the write")

	// ErrNoPrimary reports that no node in the primary region could be
	// reached before the deadline. Nothing was executed.
	ErrNoPrimary = errors.New("flypg: no primary-region node reachable")

	// ErrUnknownOutcome reports that a write was sent to the primary region but
	// the link broke before the answer came back: it may or may not have
	// committed. flypg never retries such a write by itself.
	ErrUnknownOutcome = errors.New("flypg: write outcome unknown: link to the primary region lost after sending")

	// ErrTxGone reports that a remote transaction no longer exists on the
	// primary-region node: it was rolled back because its link was lost, it
	// sat idle too long, or the node restarted. Nothing of it committed.
	ErrTxGone = errors.New("flypg: remote transaction rolled back on the primary-region node (link lost, idle timeout, or restart)")
)

// AwaitError reports that a write committed on the primary at LSN but the
// local replica had not replayed it after Waited. The write is durable; only
// read-your-writes for the next local read is not guaranteed.
type AwaitError struct {
	LSN    lsn.LSN
	Waited time.Duration
	// Err is the reason the wait ended (context.DeadlineExceeded, a
	// connection error, …).
	Err error
}

func (e *AwaitError) Error() string {
	return fmt.Sprintf("flypg: write committed at %s but the local replica did not replay it within %v: %v",
		e.LSN, e.Waited.Round(time.Millisecond), e.Err)
}

// Is makes errors.Is(err, ErrAwaitTimeout) true.
func (e *AwaitError) Is(target error) bool { return target == ErrAwaitTimeout }

// Unwrap returns the reason the wait ended.
func (e *AwaitError) Unwrap() error { return e.Err }
