package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readStream reads s to the end.
func readStream(t testing.TB, s *Stream) []byte {
	t.Helper()
	var out []byte
	for {
		b, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, b...)
	}
}

// TestChunkedRequest: a body larger than a frame (6 MiB, as a bytea
// argument would be) arrives whole, and the server's budget is back to zero
// afterwards.
func TestChunkedRequest(t *testing.T) {
	var got atomic.Pointer[[]byte]
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		got.Store(&req.Body)
		sum := sha256.Sum256(req.Body)
		return sum[:], nil
	})
	client, server := pair(t, h)
	body := make([]byte, 6<<20)
	_, _ = rand.Read(body)
	want := sha256.Sum256(body)
	ctx := ctxTimeout(t, waitFor)
	resp, err := client.Call(ctx, "iad-1", "big", body)
	require.NoError(t, err)
	assert.Equal(t, want[:], resp)
	assert.Equal(t, body, *got.Load())
	_, resp, err = client.CallPrimary(ctx, "big", body)
	require.NoError(t, err)
	assert.Equal(t, want[:], resp)
	server.bytesMu.Lock()
	assert.Zero(t, server.bytesInFlight, "the budget is released")
	server.bytesMu.Unlock()
}

// streamer answers "stream n" with n parts of size bytes each, the part
// number in its first byte, then "end".
func streamer(size int) HandlerFunc {
	return func(ctx context.Context, req *Request) ([]byte, error) {
		n, _ := strconv.Atoi(strings.TrimPrefix(req.Method, "stream "))
		chunk := make([]byte, size)
		for i := range n {
			chunk[0] = byte(i)
			if err := req.Send(ctx, chunk); err != nil {
				return nil, err
			}
		}
		return []byte("end"), nil
	}
}

// TestStreamedResponseBoundedMemory: a 100 MiB response read by a slow
// consumer costs the caller about one window, not the response's size.
func TestStreamedResponseBoundedMemory(t *testing.T) {
	const part = 256 << 10
	const parts = 400 // 100 MiB
	client, _ := pair(t, streamer(part))
	mw := watchMemory()
	s, err := client.Open(ctxTimeout(t, time.Minute), "iad-1", "stream "+strconv.Itoa(parts), nil)
	require.NoError(t, err)
	assert.Equal(t, "iad-1", s.Node())
	var total, i int
	for {
		b, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if i < parts {
			require.Len(t, b, part)
			require.Equal(t, byte(i), b[0], "parts arrive in order")
		} else {
			require.Equal(t, "end", string(b))
		}
		total += len(b)
		i++
		if i%50 == 0 {
			time.Sleep(20 * time.Millisecond) // a consumer slower than the link
		}
	}
	heap, rssGrowth := mw.end()
	assert.Equal(t, parts*part+3, total)
	t.Logf("100 MiB streamed response, slow consumer: peak heap growth %.1f MiB (window %d KiB, link buffer %d MiB, both sides in one process), RSS growth %.1f MiB",
		float64(heap)/(1<<20), DefaultStreamWindow>>10, DefaultMaxLinkBuffer>>20, float64(rssGrowth)/(1<<20))
	assert.Less(t, heap, int64(40<<20), "memory is bounded by the windows and buffers, not the 100 MiB")
}

func TestStreamOutcomes(t *testing.T) {
	handlerEnded := make(chan error, 10)
	h := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		switch req.Method {
		case "parts then fail":
			_ = req.Send(ctx, []byte("one"))
			return nil, errors.New("broke after one part")
		case "parts then decline":
			_ = req.Send(ctx, []byte("one"))
			return nil, fmt.Errorf("changed my mind: %w", ErrDecline)
		case "endless":
			for ctx.Err() == nil {
				if err := req.Send(ctx, make([]byte, 64<<10)); err != nil {
					handlerEnded <- err
					return nil, err
				}
			}
			handlerEnded <- ctx.Err()
			return nil, ctx.Err()
		}
		return streamer(100)(ctx, req)
	})
	client, server := pair(t, h)
	ctx := ctxTimeout(t, waitFor)
	for _, from := range []*Transport{client, server} { // remote and in-process
		t.Run("handler error after parts, from "+from.Name(), func(t *testing.T) {
			s, err := from.Open(ctx, "iad-1", "parts then fail", nil)
			require.NoError(t, err)
			b, err := s.Recv()
			require.NoError(t, err)
			assert.Equal(t, "one", string(b))
			_, err = s.Recv()
			var re *RemoteError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, re.Message, "broke after one part")
			_, err = from.Call(ctx, "iad-1", "parts then decline", nil)
			require.ErrorAs(t, err, &re, "a decline after parts were sent is an error, not 'not sent'")
			require.NotErrorIs(t, err, ErrNotSent)
		})
		t.Run("Close cancels the handler, from "+from.Name(), func(t *testing.T) {
			s, err := from.Open(ctx, "iad-1", "endless", nil)
			require.NoError(t, err)
			_, err = s.Recv()
			require.NoError(t, err)
			require.NoError(t, s.Close())
			select {
			case err := <-handlerEnded:
				require.Error(t, err)
			case <-time.After(waitFor):
				t.Fatal("the handler did not see the stream closed")
			}
			_, err = s.Recv()
			require.Error(t, err)
		})
		t.Run("deadline mid-stream, from "+from.Name(), func(t *testing.T) {
			s, err := from.Open(ctxTimeout(t, 300*time.Millisecond), "iad-1", "endless", nil)
			require.NoError(t, err)
			for {
				if _, err = s.Recv(); err != nil {
					break
				}
				time.Sleep(time.Millisecond)
			}
			// Either the caller's clock or the handler's (the shipped
			// deadline) ends it first: an unknown outcome, or the handler's
			// own deadline error.
			require.ErrorIs(t, err, context.DeadlineExceeded)
			var re *RemoteError
			if !errors.As(err, &re) {
				require.ErrorIs(t, err, ErrUnknownOutcome)
			}
			<-handlerEnded
		})
		t.Run("Call concatenates the parts, from "+from.Name(), func(t *testing.T) {
			resp, err := from.Call(ctx, "iad-1", "stream 3", nil)
			require.NoError(t, err)
			assert.Len(t, resp, 303)
			assert.Equal(t, "end", string(resp[300:]))
		})
	}
	t.Run("link lost mid-stream", func(t *testing.T) {
		s, err := client.Open(ctx, "iad-1", "endless", nil)
		require.NoError(t, err)
		_, err = s.Recv()
		require.NoError(t, err)
		dropInbound(server)
		for err == nil {
			_, err = s.Recv()
		}
		require.ErrorIs(t, err, ErrUnknownOutcome, "it was sent, and its end never came")
		<-handlerEnded
	})
}

// TestUploadInterruptedIsNotSent: a request whose body is still in transit
// when the caller gives up never runs, so it is "not sent" — safe to retry
// anywhere — and the server drops what it had.
func TestUploadInterruptedIsNotSent(t *testing.T) {
	var ran atomic.Int64
	rpc := deadAddr(t)
	c := testConfig("iad-1", "iad")
	c.RPCAddr = rpc
	c.AdvertiseRPCAddr = toxicProxy(t, rpc, `{"name":"slow","type":"bandwidth","stream":"upstream","attributes":{"rate":2000}}`)
	server := startNode(t, c, HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		ran.Add(1)
		return nil, nil
	}))
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), server), nil)
	awaitMembers(t, []*Transport{client, server}, "iad-1", "lhr-1")
	_, err := client.Call(ctxTimeout(t, waitFor), "iad-1", "warm", nil)
	require.NoError(t, err)

	_, err = client.Call(ctxTimeout(t, 500*time.Millisecond), "iad-1", "upload", make([]byte, 8<<20)) // 4 s at 2 MB/s
	require.ErrorIs(t, err, ErrNotSent)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Eventually(t, func() bool {
		server.bytesMu.Lock()
		defer server.bytesMu.Unlock()
		return server.bytesInFlight == 0
	}, waitFor, 10*time.Millisecond, "the server dropped the partial body")
	assert.EqualValues(t, 1, ran.Load(), "only the warm-up ran")
}

func TestDecline(t *testing.T) {
	decliner := HandlerFunc(func(ctx context.Context, req *Request) ([]byte, error) {
		return nil, fmt.Errorf("node iad-1: database app is no longer the primary here: %w", ErrDecline)
	})
	primary := func() bool { return true }
	c1 := testConfig("iad-1", "iad")
	c1.Primary = primary
	n1 := startNode(t, c1, decliner)
	c2 := joinTo(testConfig("iad-2", "iad"), n1)
	c2.Primary = primary
	n2 := startNode(t, c2, nil)
	client := startNode(t, joinTo(testConfig("lhr-1", "lhr"), n1), nil)
	awaitMembers(t, []*Transport{n1, n2, client}, "iad-1", "iad-2", "lhr-1")
	ctx := ctxTimeout(t, waitFor)

	_, err := client.Call(ctx, "iad-1", "write", nil)
	require.ErrorIs(t, err, ErrNotSent)
	require.ErrorIs(t, err, ErrDecline)
	assert.Contains(t, err.Error(), "no longer the primary")
	_, err = n1.Call(ctx, "iad-1", "write", nil) // in-process, the same
	require.ErrorIs(t, err, ErrNotSent)
	require.ErrorIs(t, err, ErrDecline)

	// A selector moves on to the next candidate, whichever is tried first.
	for range 5 {
		node, resp, err := client.CallPrimary(ctx, "write", nil)
		require.NoError(t, err)
		assert.Equal(t, "iad-2", node)
		assert.Equal(t, "iad-2/iad:write:", string(resp))
		s, err := client.OpenSelect(ctx, SelectRegion("iad"), ErrNoNode, "write", nil)
		require.NoError(t, err)
		assert.Equal(t, "iad-2", s.Node())
		assert.Equal(t, "iad-2/iad:write:", string(readStream(t, s)))
	}
}

// TestStreamWindowEnforced: a server that sends more than the window it was
// granted is cut off, rather than filling the caller's memory.
func TestStreamWindowEnforced(t *testing.T) {
	c := newCall(1000)
	c.l = &clientLink{}
	require.NoError(t, c.push(make([]byte, 600)))
	require.NoError(t, c.push(make([]byte, 400)))
	require.ErrorIs(t, c.push(make([]byte, 1)), errBadFrame)
}
