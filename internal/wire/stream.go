package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// A reply is a sequence of messages on a byte stream: each a 4-byte
// big-endian length and that many bytes of msgpack. The transport carries
// the stream in as many frames as its size needs, so a message boundary
// need not be a frame boundary and a reply's size is not bounded by the
// frame limit — only each message is, by MaxMessage.

// MaxMessage bounds one message of a reply. Servers keep parts far smaller
// (see MaxPartBytes) except for a single row holding a large value, which
// goes whole: the bound is PostgreSQL's own 1 GB limit on a field, plus
// room for the envelope. A reader allocates only as the bytes arrive, so a
// length that lies costs nothing.
const MaxMessage = 1<<30 + 1<<20

// MaxPartBytes is the size at which a serving node ends a Part and starts
// the next one.
const MaxPartBytes = 256 << 10

// Writer writes messages to a reply stream.
type Writer struct {
	w   io.Writer
	hdr [4]byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write encodes v and writes it as one message.
func (w *Writer) Write(v any) error {
	b, err := Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxMessage {
		return fmt.Errorf("flypg: a reply message of %d bytes exceeds the %d-byte limit", len(b), MaxMessage)
	}
	binary.BigEndian.PutUint32(w.hdr[:], uint32(len(b)))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err = w.w.Write(b)
	return err
}

// Reader reads the messages of a reply stream.
type Reader struct {
	r   *bufio.Reader
	buf []byte
	hdr [4]byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 32<<10)} }

// Read decodes the next message into v. At the end of the stream it
// returns io.EOF, and io.ErrUnexpectedEOF within a message.
func (r *Reader) Read(v any) error {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if n > MaxMessage {
		return fmt.Errorf("%w: a message of %d bytes exceeds the %d-byte limit", ErrMalformed, n, MaxMessage)
	}
	var b []byte
	if int(n) <= cap(r.buf) || n <= MaxPartBytes*2 {
		if cap(r.buf) < int(n) {
			r.buf = make([]byte, n)
		}
		b = r.buf[:n]
		if _, err := io.ReadFull(r.r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	} else {
		// A large message grows its buffer as its bytes arrive.
		var buf bytes.Buffer
		if m, err := io.CopyN(&buf, r.r, int64(n)); err != nil {
			if m < int64(n) && (err == io.EOF || err == nil) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		b = buf.Bytes()
	}
	err := Unmarshal(b, v)
	if cap(r.buf) > MaxPartBytes*2 {
		r.buf = nil // an occasional big message must not pin its buffer
	}
	return err
}
