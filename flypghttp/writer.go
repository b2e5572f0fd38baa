package flypghttp

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// writer wraps a handler's ResponseWriter so that the token lands in the
// header map before the headers go out: net/http snapshots the map at the
// first WriteHeader, Write or Flush, and changes after that are lost.
//
// It keeps the optional interfaces of the writer it wraps (http.Flusher,
// http.Hijacker, io.ReaderFrom, http.Pusher) — and only those, so that a
// handler's type assertion answers as it would without the middleware —
// and follows http.ResponseController's conventions: FlushError, and Unwrap
// for everything else (deadlines, full duplex).
type writer struct {
	http.ResponseWriter
	before func() // adds the token; called once, before the headers go out
	done   bool   // before ran, or the connection was hijacked
}

// headersOut runs before once. Handlers do not write concurrently (net/http's
// own writer is not safe for it), so a plain bool is enough.
func (w *writer) headersOut() {
	if !w.done {
		w.done = true
		w.before()
	}
}

func (w *writer) WriteHeader(code int) {
	// Informational responses (103 Early Hints) go out before the final
	// header; the token belongs on the final one, once the writes are done.
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.headersOut()
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	w.headersOut()
	return w.ResponseWriter.Write(b)
}

// WriteString keeps the underlying writer's string fast path; io.WriteString
// would otherwise copy into a []byte.
func (w *writer) WriteString(s string) (int, error) {
	w.headersOut()
	if sw, ok := w.ResponseWriter.(io.StringWriter); ok {
		return sw.WriteString(s)
	}
	return w.ResponseWriter.Write([]byte(s))
}

// FlushError is what http.ResponseController.Flush calls first. Having it
// even where the wrapped writer is no http.Flusher (but unwraps to one)
// keeps ResponseController from flushing past the token.
func (w *writer) FlushError() error {
	w.headersOut()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the wrapped writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type flusher struct {
	w *writer
	f http.Flusher
}

func (f flusher) Flush() {
	f.w.headersOut()
	f.f.Flush()
}

type hijacker struct {
	w *writer
	h http.Hijacker
}

// Hijack hands the connection over: the handler writes its own response
// (a WebSocket upgrade), with no headers of ours.
func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := h.h.Hijack()
	if err == nil {
		h.w.done = true
	}
	return c, rw, err
}

type readerFrom struct {
	w *writer
	r io.ReaderFrom
}

// ReadFrom keeps net/http's sendfile path for io.Copy(w, file).
func (r readerFrom) ReadFrom(src io.Reader) (int64, error) {
	r.w.headersOut()
	return r.r.ReadFrom(src)
}

// pusher passes pushes through: a push promise is not the response's header.
type pusher struct{ http.Pusher }

// wrap returns the wrapper of rw, with the optional interfaces rw has.
func wrap(rw http.ResponseWriter, before func()) (*writer, http.ResponseWriter) {
	w := &writer{ResponseWriter: rw, before: before}
	f, isF := rw.(http.Flusher)
	h, isH := rw.(http.Hijacker)
	r, isR := rw.(io.ReaderFrom)
	p, isP := rw.(http.Pusher)
	F, H, R, P := flusher{w, f}, hijacker{w, h}, readerFrom{w, r}, pusher{p}
	var out http.ResponseWriter
	switch bit(isF) | bit(isH)<<1 | bit(isR)<<2 | bit(isP)<<3 {
	case 0b0000:
		out = w
	case 0b0001:
		out = struct {
			*writer
			flusher
		}{w, F}
	case 0b0010:
		out = struct {
			*writer
			hijacker
		}{w, H}
	case 0b0011:
		out = struct {
			*writer
			flusher
			hijacker
		}{w, F, H}
	case 0b0100:
		out = struct {
			*writer
			readerFrom
		}{w, R}
	case 0b0101:
		out = struct {
			*writer
			flusher
			readerFrom
		}{w, F, R}
	case 0b0110:
		out = struct {
			*writer
			hijacker
			readerFrom
		}{w, H, R}
	case 0b0111: // HTTP/1.x
		out = struct {
			*writer
			flusher
			hijacker
			readerFrom
		}{w, F, H, R}
	case 0b1000:
		out = struct {
			*writer
			pusher
		}{w, P}
	case 0b1001: // HTTP/2
		out = struct {
			*writer
			flusher
			pusher
		}{w, F, P}
	case 0b1010:
		out = struct {
			*writer
			hijacker
			pusher
		}{w, H, P}
	case 0b1011:
		out = struct {
			*writer
			flusher
			hijacker
			pusher
		}{w, F, H, P}
	case 0b1100:
		out = struct {
			*writer
			readerFrom
			pusher
		}{w, R, P}
	case 0b1101:
		out = struct {
			*writer
			flusher
			readerFrom
			pusher
		}{w, F, R, P}
	case 0b1110:
		out = struct {
			*writer
			hijacker
			readerFrom
			pusher
		}{w, H, R, P}
	default: // 0b1111
		out = struct {
			*writer
			flusher
			hijacker
			readerFrom
			pusher
		}{w, F, H, R, P}
	}
	return w, out
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}
