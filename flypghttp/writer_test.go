package flypghttp

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// calls logs what reached the wrapped writer, and when the token was added.
type calls []string

func (c *calls) add(s string) { *c = append(*c, s) }

type fakeBase struct {
	h   http.Header
	log *calls
}

func (f *fakeBase) Header() http.Header             { return f.h }
func (f *fakeBase) Write(b []byte) (int, error)     { f.log.add("write"); return len(b), nil }
func (f *fakeBase) WriteHeader(code int)            { f.log.add("header") }
func (f *fakeBase) WriteString(string) (int, error) { f.log.add("writestring"); return 0, nil }

type fakeFlush struct{ log *calls }

func (f fakeFlush) Flush() { f.log.add("flush") }

type fakeHijack struct{ log *calls }

func (f fakeHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	f.log.add("hijack")
	return nil, nil, nil
}

type fakeReadFrom struct{ log *calls }

func (f fakeReadFrom) ReadFrom(io.Reader) (int64, error) { f.log.add("readfrom"); return 0, nil }

type fakePush struct{ log *calls }

func (f fakePush) Push(string, *http.PushOptions) error { f.log.add("push"); return nil }

const (
	hasFlush = 1 << iota
	hasHijack
	hasReadFrom
	hasPush
)

// fake returns a ResponseWriter with exactly the optional interfaces in mask.
func fake(mask int, log *calls) http.ResponseWriter {
	b := &fakeBase{h: http.Header{}, log: log}
	F, H, R, P := fakeFlush{log}, fakeHijack{log}, fakeReadFrom{log}, fakePush{log}
	switch mask {
	case 0:
		return b
	case hasFlush:
		return struct {
			*fakeBase
			fakeFlush
		}{b, F}
	case hasHijack:
		return struct {
			*fakeBase
			fakeHijack
		}{b, H}
	case hasFlush | hasHijack:
		return struct {
			*fakeBase
			fakeFlush
			fakeHijack
		}{b, F, H}
	case hasReadFrom:
		return struct {
			*fakeBase
			fakeReadFrom
		}{b, R}
	case hasFlush | hasReadFrom:
		return struct {
			*fakeBase
			fakeFlush
			fakeReadFrom
		}{b, F, R}
	case hasHijack | hasReadFrom:
		return struct {
			*fakeBase
			fakeHijack
			fakeReadFrom
		}{b, H, R}
	case hasFlush | hasHijack | hasReadFrom:
		return struct {
			*fakeBase
			fakeFlush
			fakeHijack
			fakeReadFrom
		}{b, F, H, R}
	case hasPush:
		return struct {
			*fakeBase
			fakePush
		}{b, P}
	case hasFlush | hasPush:
		return struct {
			*fakeBase
			fakeFlush
			fakePush
		}{b, F, P}
	case hasHijack | hasPush:
		return struct {
			*fakeBase
			fakeHijack
			fakePush
		}{b, H, P}
	case hasFlush | hasHijack | hasPush:
		return struct {
			*fakeBase
			fakeFlush
			fakeHijack
			fakePush
		}{b, F, H, P}
	case hasReadFrom | hasPush:
		return struct {
			*fakeBase
			fakeReadFrom
			fakePush
		}{b, R, P}
	case hasFlush | hasReadFrom | hasPush:
		return struct {
			*fakeBase
			fakeFlush
			fakeReadFrom
			fakePush
		}{b, F, R, P}
	case hasHijack | hasReadFrom | hasPush:
		return struct {
			*fakeBase
			fakeHijack
			fakeReadFrom
			fakePush
		}{b, H, R, P}
	default:
		return struct {
			*fakeBase
			fakeFlush
			fakeHijack
			fakeReadFrom
			fakePush
		}{b, F, H, R, P}
	}
}

func interfaces(w http.ResponseWriter) int {
	mask := 0
	if _, ok := w.(http.Flusher); ok {
		mask |= hasFlush
	}
	if _, ok := w.(http.Hijacker); ok {
		mask |= hasHijack
	}
	if _, ok := w.(io.ReaderFrom); ok {
		mask |= hasReadFrom
	}
	if _, ok := w.(http.Pusher); ok {
		mask |= hasPush
	}
	return mask
}

// TestWriterKeepsInterfaces: for every combination of optional interfaces,
// the wrapper has exactly those of the writer it wraps, each reaches the
// wrapped writer, and the token goes in before each call that sends the
// headers (WriteHeader of a final status, Write, WriteString, Flush,
// ReadFrom) — and not before those that don't (1xx, Push, Hijack).
func TestWriterKeepsInterfaces(t *testing.T) {
	for mask := range 16 {
		t.Run(strings.ReplaceAll(maskName(mask), " ", "+"), func(t *testing.T) {
			var log calls
			under := fake(mask, &log)
			require.Equal(t, mask, interfaces(under), "fake")
			ww, w := wrap(under, func() { log.add("token") })
			assert.Equal(t, mask, interfaces(w), "wrapper has exactly the wrapped writer's interfaces")
			assert.Equal(t, under, w.(interface{ Unwrap() http.ResponseWriter }).Unwrap(), "Unwrap")
			assert.Equal(t, under, http.ResponseWriter(ww.ResponseWriter))

			if p, ok := w.(http.Pusher); ok {
				require.NoError(t, p.Push("/style.css", nil))
			}
			w.WriteHeader(http.StatusEarlyHints)
			var want calls
			if mask&hasPush != 0 {
				want = append(want, "push")
			}
			want = append(want, "header")
			assert.Equal(t, want, log, "no token before a push or a 103")

			// Whichever call first sends the headers adds the token first, once.
			switch {
			case mask&hasFlush != 0:
				w.(http.Flusher).Flush()
				want = append(want, "token", "flush")
			case mask&hasReadFrom != 0:
				_, _ = w.(io.ReaderFrom).ReadFrom(strings.NewReader("x"))
				want = append(want, "token", "readfrom")
			default:
				_, _ = io.WriteString(w, "x")
				want = append(want, "token", "writestring")
			}
			_, _ = w.Write([]byte("y"))
			w.WriteHeader(http.StatusOK) // superfluous, but must not add the token twice
			want = append(want, "write", "header")
			assert.Equal(t, want, log)
			if h, ok := w.(http.Hijacker); ok {
				_, _, err := h.Hijack()
				require.NoError(t, err)
				assert.Equal(t, "hijack", log[len(log)-1])
			}
		})
	}
}

func maskName(mask int) string {
	var names []string
	for bit, name := range []string{"Flusher", "Hijacker", "ReaderFrom", "Pusher"} {
		if mask&(1<<bit) != 0 {
			names = append(names, name)
		}
	}
	if names == nil {
		return "none"
	}
	return strings.Join(names, " ")
}

// TestWriterHijackBeforeHeaders: a handler that hijacks the connection
// writes its own response; nothing of ours is added afterwards.
func TestWriterHijackBeforeHeaders(t *testing.T) {
	var log calls
	ww, w := wrap(fake(hasHijack, &log), func() { log.add("token") })
	_, _, err := w.(http.Hijacker).Hijack()
	require.NoError(t, err)
	ww.headersOut() // what the middleware does when the handler returns
	assert.Equal(t, calls{"hijack"}, log)
}

// unwrapOnly is a middleware's writer that follows only the Unwrap
// convention: it is no http.Flusher itself.
type unwrapOnly struct{ http.ResponseWriter }

func (u unwrapOnly) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestWriterResponseController: http.ResponseController flushes through the
// wrapper — adding the token first — even where the wrapped writer is
// reachable only by Unwrap.
func TestWriterResponseController(t *testing.T) {
	for name, under := range map[string]func(http.ResponseWriter) http.ResponseWriter{
		"flusher":     func(w http.ResponseWriter) http.ResponseWriter { return w },
		"unwrap only": func(w http.ResponseWriter) http.ResponseWriter { return unwrapOnly{w} },
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			_, w := wrap(under(rec), func() { rec.Header().Set("Flypg-Token", "tok") })
			require.NoError(t, http.NewResponseController(w).Flush())
			assert.True(t, rec.Flushed)
			assert.Equal(t, "tok", rec.Result().Header.Get("Flypg-Token"), "the token was in the flushed headers")
		})
	}
}

// TestWriterRealServers: the writers of net/http's HTTP/1.1 and HTTP/2
// servers and httptest's recorder keep their interfaces through the wrapper.
func TestWriterRealServers(t *testing.T) {
	check := func(t *testing.T, want int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, ww := wrap(w, func() {})
			if !assert.Equal(t, maskName(interfaces(w)), maskName(interfaces(ww))) ||
				!assert.Equal(t, maskName(want), maskName(interfaces(w)), "the server's own writer") {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
	}
	t.Run("recorder", func(t *testing.T) {
		check(t, hasFlush).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	})
	t.Run("HTTP/1.1", func(t *testing.T) {
		s := httptest.NewServer(check(t, hasFlush|hasHijack|hasReadFrom))
		defer s.Close()
		resp, err := s.Client().Get(s.URL)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("HTTP/2", func(t *testing.T) {
		s := httptest.NewUnstartedServer(check(t, hasFlush|hasPush))
		s.EnableHTTP2 = true
		s.StartTLS()
		defer s.Close()
		resp, err := s.Client().Get(s.URL)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 2, resp.ProtoMajor)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}
