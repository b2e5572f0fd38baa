package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

type frameType uint8

const (
	frameHello frameType = 1 + iota
	frameChallenge
	frameAuth
	frameWelcome
	frameRequest
	frameResponse
	frameError  // the handler failed: method = error kind, body = message
	frameReject // the request was not run: body = reason
	frameCancel
	framePing
	framePong
	frameGoAway       // the server takes no new requests on this link
	frameRequestPart  // v3: more of a request body; the last one completes it
	frameResponsePart // v3: part of a streamed response; the final frame follows
	frameCredit       // v3: the client lets the server send n more response bytes
	frameTypeEnd
)

// v3Only reports whether a frame type exists only from protocol version 3.
func (t frameType) v3Only() bool { return t >= frameRequestPart }

// Error kinds, in the method field of error frames.
const (
	errKindHandler  = ""
	errKindPanic    = "panic"
	errKindTooLarge = "too_large"
	// The handler gave up because the caller's deadline passed or it
	// cancelled: the caller sees the context error through RemoteError.
	errKindDeadline = "deadline"
	errKindCanceled = "canceled"
	// On reject frames: the handler declined the request (ErrDecline).
	rejectKindDecline = "decline"
)

// frame is the envelope: see the package documentation for the wire form.
type frame struct {
	Type    frameType
	ID      uint64
	Method  string
	Timeout time.Duration // time the caller had left when it sent; 0 = none
	// N is a count whose meaning depends on the type: a request's total
	// body length (more than len(Body) when parts follow), a credit
	// frame's grant in bytes; 0 otherwise.
	N    int64
	Body []byte
}

const (
	frameHeaderLen = 4
	envelopeFields = 6
	// frameOverhead bounds the envelope's size beyond method and body.
	frameOverhead = 64
	// keepReadBuf is the largest read buffer a link keeps between frames;
	// bigger frames get a one-off buffer so an occasional large request
	// does not pin megabytes per link.
	keepReadBuf = 64 << 10
)

var (
	errEmptyFrame = errors.New("transport: empty frame")
	errBadFrame   = errors.New("transport: malformed frame")
)

// frameBuf is an encoded frame, length prefix included, ready to write.
type frameBuf struct{ bytes.Buffer }

var framePool = sync.Pool{New: func() any { return new(frameBuf) }}

func (fb *frameBuf) free() {
	if fb.Cap() <= keepReadBuf {
		fb.Reset()
		framePool.Put(fb)
	}
}

// payloadLen is the length the prefix announces.
func (fb *frameBuf) payloadLen() int { return fb.Len() - frameHeaderLen }

// encodeFrame encodes f behind its length prefix.
func encodeFrame(f *frame) *frameBuf {
	fb := framePool.Get().(*frameBuf)
	fb.Write([]byte{0, 0, 0, 0})
	enc := msgpack.GetEncoder()
	enc.Reset(&fb.Buffer)
	// Writes to a bytes.Buffer cannot fail, and the values are all simple
	// types, so the encoder's errors are impossible here.
	_ = enc.EncodeArrayLen(envelopeFields)
	_ = enc.EncodeUint(uint64(f.Type))
	_ = enc.EncodeUint(f.ID)
	_ = enc.EncodeString(f.Method)
	_ = enc.EncodeInt(int64(f.Timeout))
	_ = enc.EncodeInt(f.N)
	_ = enc.EncodeBytes(f.Body)
	msgpack.PutEncoder(enc)
	binary.BigEndian.PutUint32(fb.Bytes()[:frameHeaderLen], uint32(fb.payloadLen()))
	return fb
}

// frameReader reads frames from one connection. It is not safe for
// concurrent use; each link has one reader goroutine.
type frameReader struct {
	r    *bufio.Reader
	max  int // the current limit: tiny during the handshake
	keep int // the largest buffer kept between frames
	buf  []byte
	hdr  [frameHeaderLen]byte
	dec  frameDecoder
}

func newFrameReader(r io.Reader, max int) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 16<<10), max: max, keep: keepReadBuf}
}

// read returns the next frame. The length prefix is checked against the
// limit before anything is allocated for the payload.
func (fr *frameReader) read() (frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:])
	switch {
	case n == 0:
		return frame{}, errEmptyFrame
	case uint64(n) > uint64(fr.max):
		return frame{}, fmt.Errorf("%w: peer announced %d bytes, limit %d", ErrFrameTooLarge, n, fr.max)
	}
	var buf []byte
	if int(n) <= fr.keep {
		if cap(fr.buf) < int(n) {
			// Grow geometrically, so a link of small frames keeps a small
			// buffer and a busy one stops reallocating.
			fr.buf = make([]byte, min(max(int(n), 2*cap(fr.buf), 512), fr.keep))
		}
		buf = fr.buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(fr.r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return fr.dec.decode(buf)
}

// frameDecoder decodes envelopes. It keeps its msgpack decoder between
// frames; it is not safe for concurrent use.
type frameDecoder struct {
	br  bytes.Reader
	dec *msgpack.Decoder
}

// decode parses one envelope that must fill b exactly. The returned frame
// does not alias b. Only flat values are accepted — no nested containers —
// so hostile input cannot drive the decoder into deep recursion.
func (d *frameDecoder) decode(b []byte) (frame, error) {
	if d.dec == nil {
		d.dec = msgpack.NewDecoder(nil)
	}
	d.br.Reset(b)
	d.dec.Reset(&d.br)
	var f frame
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return frame{}, fmt.Errorf("%w: %w", errBadFrame, err)
	}
	if n != envelopeFields {
		return frame{}, fmt.Errorf("%w: envelope has %d fields, want %d", errBadFrame, n, envelopeFields)
	}
	t, err := d.dec.DecodeUint64()
	if err != nil {
		return frame{}, fmt.Errorf("%w: type: %w", errBadFrame, err)
	}
	if t == 0 || t >= uint64(frameTypeEnd) {
		return frame{}, fmt.Errorf("%w: unknown frame type %d", errBadFrame, t)
	}
	f.Type = frameType(t)
	if f.ID, err = d.dec.DecodeUint64(); err != nil {
		return frame{}, fmt.Errorf("%w: id: %w", errBadFrame, err)
	}
	method, err := d.bytes(b)
	if err != nil {
		return frame{}, fmt.Errorf("%w: method: %w", errBadFrame, err)
	}
	f.Method = string(method)
	timeout, err := d.dec.DecodeInt64()
	if err != nil {
		return frame{}, fmt.Errorf("%w: timeout: %w", errBadFrame, err)
	}
	if timeout < 0 {
		return frame{}, fmt.Errorf("%w: negative timeout", errBadFrame)
	}
	f.Timeout = time.Duration(timeout)
	if f.N, err = d.dec.DecodeInt64(); err != nil {
		return frame{}, fmt.Errorf("%w: n: %w", errBadFrame, err)
	}
	if f.N < 0 {
		return frame{}, fmt.Errorf("%w: negative n", errBadFrame)
	}
	body, err := d.bytes(b)
	if err != nil {
		return frame{}, fmt.Errorf("%w: body: %w", errBadFrame, err)
	}
	if len(body) > 0 {
		f.Body = bytes.Clone(body)
	}
	if d.br.Len() != 0 {
		return frame{}, fmt.Errorf("%w: %d trailing bytes", errBadFrame, d.br.Len())
	}
	return f, nil
}

// bytes returns a str, bin or nil value as a slice of b, checking its
// declared length against what is left, so a lying length never allocates.
func (d *frameDecoder) bytes(b []byte) ([]byte, error) {
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	if n > d.br.Len() {
		return nil, fmt.Errorf("length %d exceeds the %d bytes left", n, d.br.Len())
	}
	off := len(b) - d.br.Len()
	if _, err := d.br.Seek(int64(n), io.SeekCurrent); err != nil {
		return nil, err
	}
	return b[off : off+n], nil
}
