package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	msgpack "github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Limits bound what one decoded message may make the decoder allocate.
// msgpack lengths are declared up front, and the decoder trusts them: an
// 11-byte message claiming 2^32-1 array elements would make it allocate
// until the process dies (recover cannot catch that). check walks the bytes
// first, without allocating, and refuses any declared length that the bytes
// left cannot hold, nesting deeper than MaxDepth, and more than MaxElems
// array elements and map entries in all — which bounds the decoder's
// allocations to a small multiple of the message's own size.
type Limits struct {
	MaxDepth int
	MaxElems int
	// Ext admits msgpack extension types (a user's time.Time in a
	// procedure's request or answer); flypg's own messages have none.
	Ext bool
}

// UserLimits bound a procedure's request and answer: values of the user's
// own types, of any length the bytes can hold, nested at most 64 deep.
var UserLimits = Limits{MaxDepth: 64, MaxElems: math.MaxInt, Ext: true}

// DefaultLimits fit every message flypg sends: a batch's parameters are at
// most PostgreSQL's 65535 per statement, and a reply's rows come in parts
// of at most MaxPartCells values.
var DefaultLimits = Limits{MaxDepth: 12, MaxElems: DefaultLimitsMaxElems}

// DefaultLimitsMaxElems is DefaultLimits.MaxElems, for senders that split
// what they send to stay within it.
const DefaultLimitsMaxElems = 1 << 18

// MaxPartCells is the most values a serving node puts in one reply Part.
const MaxPartCells = 1 << 14

// ErrMalformed reports a message that does not decode.
var ErrMalformed = errors.New("flypg: malformed message")

// Check validates b as one msgpack value within lim.
func Check(b []byte, lim Limits) error {
	c := checker{b: b, lim: lim}
	if err := c.value(0); err != nil {
		return err
	}
	if c.off != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b)-c.off)
	}
	return nil
}

type checker struct {
	b     []byte
	off   int
	elems int
	lim   Limits
}

func (c *checker) left() int { return len(c.b) - c.off }

func (c *checker) need(n int) error {
	if n < 0 || n > c.left() {
		return fmt.Errorf("%w: a length of %d exceeds the %d bytes left", ErrMalformed, n, c.left())
	}
	return nil
}

// uint reads an n-byte big-endian length at the current offset.
func (c *checker) uint(n int) (int, error) {
	if err := c.need(n); err != nil {
		return 0, err
	}
	var v uint64
	switch n {
	case 1:
		v = uint64(c.b[c.off])
	case 2:
		v = uint64(binary.BigEndian.Uint16(c.b[c.off:]))
	case 4:
		v = uint64(binary.BigEndian.Uint32(c.b[c.off:]))
	}
	c.off += n
	if v > uint64(len(c.b)) {
		return 0, fmt.Errorf("%w: a length of %d exceeds the message", ErrMalformed, v)
	}
	return int(v), nil
}

func (c *checker) skip(n int) error {
	if err := c.need(n); err != nil {
		return err
	}
	c.off += n
	return nil
}

func (c *checker) value(depth int) error {
	if depth > c.lim.MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, c.lim.MaxDepth)
	}
	if c.left() < 1 {
		return fmt.Errorf("%w: truncated", ErrMalformed)
	}
	code := c.b[c.off]
	c.off++
	switch {
	case code <= msgpack.PosFixedNumHigh || code >= msgpack.NegFixedNumLow:
		return nil
	case code >= msgpack.FixedStrLow && code <= msgpack.FixedStrHigh:
		return c.skip(int(code & msgpack.FixedStrMask))
	case code >= msgpack.FixedArrayLow && code <= msgpack.FixedArrayHigh:
		return c.container(int(code&msgpack.FixedArrayMask), 1, depth)
	case code >= msgpack.FixedMapLow && code <= msgpack.FixedMapHigh:
		return c.container(int(code&msgpack.FixedMapMask), 2, depth)
	}
	switch code {
	case msgpack.Nil, msgpack.False, msgpack.True:
		return nil
	case msgpack.Uint8, msgpack.Int8:
		return c.skip(1)
	case msgpack.Uint16, msgpack.Int16:
		return c.skip(2)
	case msgpack.Uint32, msgpack.Int32, msgpack.Float:
		return c.skip(4)
	case msgpack.Uint64, msgpack.Int64, msgpack.Double:
		return c.skip(8)
	case msgpack.Str8, msgpack.Bin8:
		return c.sized(1)
	case msgpack.Str16, msgpack.Bin16:
		return c.sized(2)
	case msgpack.Str32, msgpack.Bin32:
		return c.sized(4)
	case msgpack.Array16, msgpack.Array32, msgpack.Map16, msgpack.Map32:
		width, per := 2, 1
		if code == msgpack.Array32 || code == msgpack.Map32 {
			width = 4
		}
		if code == msgpack.Map16 || code == msgpack.Map32 {
			per = 2
		}
		n, err := c.uint(width)
		if err != nil {
			return err
		}
		return c.container(n, per, depth)
	}
	if c.lim.Ext {
		switch code {
		case msgpack.FixExt1, msgpack.FixExt2, msgpack.FixExt4, msgpack.FixExt8, msgpack.FixExt16:
			return c.skip(1 + 1<<(code-msgpack.FixExt1)) // type, data
		case msgpack.Ext8, msgpack.Ext16, msgpack.Ext32:
			n, err := c.uint(1 << (code - msgpack.Ext8))
			if err != nil {
				return err
			}
			return c.skip(1 + n)
		}
	}
	// Extension types (and the reserved code) are never sent by flypg.
	return fmt.Errorf("%w: unexpected msgpack code 0x%02x", ErrMalformed, code)
}

func (c *checker) sized(width int) error {
	n, err := c.uint(width)
	if err != nil {
		return err
	}
	return c.skip(n)
}

// container checks n entries of per values each: every value takes at
// least a byte, so n*per may not exceed what is left.
func (c *checker) container(n, per, depth int) error {
	if err := c.need(n * per); err != nil {
		return err
	}
	if c.elems += n; c.elems > c.lim.MaxElems {
		return fmt.Errorf("%w: more than %d elements", ErrMalformed, c.lim.MaxElems)
	}
	for range n * per {
		if err := c.value(depth + 1); err != nil {
			return err
		}
	}
	return nil
}
