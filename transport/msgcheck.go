package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkMsgpack walks one msgpack value that must fill b exactly, without
// decoding it, and refuses it if any declared length exceeds the bytes that
// remain (each element of a container takes at least one byte, so a
// container may declare at most that many), or containers nest deeper than
// maxDepth. After it passes, a decoder can allocate no more than a small
// multiple of len(b). msgpack's own decoder trusts declared lengths.
func checkMsgpack(b []byte, maxDepth int) error {
	rest, err := skipMsgpack(b, maxDepth)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%d trailing bytes", len(rest))
	}
	return nil
}

var errMsgpackShort = errors.New("msgpack: truncated value")

// skipMsgpack skips one value and returns what follows it.
func skipMsgpack(b []byte, depth int) ([]byte, error) {
	if len(b) == 0 {
		return nil, errMsgpackShort
	}
	c := b[0]
	b = b[1:]
	need := func(n uint64) ([]byte, error) {
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("msgpack: declared length %d exceeds the %d bytes left", n, len(b))
		}
		return b[n:], nil
	}
	length := func(size int) (uint64, error) {
		if len(b) < size {
			return 0, errMsgpackShort
		}
		var n uint64
		switch size {
		case 1:
			n = uint64(b[0])
		case 2:
			n = uint64(binary.BigEndian.Uint16(b))
		case 4:
			n = uint64(binary.BigEndian.Uint32(b))
		}
		b = b[size:]
		return n, nil
	}
	container := func(n uint64, perElem uint64) ([]byte, error) {
		if depth <= 0 {
			return nil, errors.New("msgpack: nested too deep")
		}
		if n*perElem > uint64(len(b)) {
			return nil, fmt.Errorf("msgpack: container of %d elements in %d bytes", n, len(b))
		}
		var err error
		for range n * perElem {
			if b, err = skipMsgpack(b, depth-1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixint, nil, bool
		return b, nil
	case c >= 0x80 && c <= 0x8f: // fixmap
		return container(uint64(c&0x0f), 2)
	case c >= 0x90 && c <= 0x9f: // fixarray
		return container(uint64(c&0x0f), 1)
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return need(uint64(c & 0x1f))
	}
	switch c {
	case 0xc4, 0xd9: // bin8, str8
		n, err := length(1)
		if err != nil {
			return nil, err
		}
		return need(n)
	case 0xc5, 0xda: // bin16, str16
		n, err := length(2)
		if err != nil {
			return nil, err
		}
		return need(n)
	case 0xc6, 0xdb: // bin32, str32
		n, err := length(4)
		if err != nil {
			return nil, err
		}
		return need(n)
	case 0xcc, 0xd0: // uint8, int8
		return need(1)
	case 0xcd, 0xd1:
		return need(2)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return need(4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return need(8)
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // ext, fixext
		return nil, errors.New("msgpack: extension types are not accepted")
	case 0xdc: // array16
		n, err := length(2)
		if err != nil {
			return nil, err
		}
		return container(n, 1)
	case 0xdd:
		n, err := length(4)
		if err != nil {
			return nil, err
		}
		return container(n, 1)
	case 0xde: // map16
		n, err := length(2)
		if err != nil {
			return nil, err
		}
		return container(n, 2)
	case 0xdf:
		n, err := length(4)
		if err != nil {
			return nil, err
		}
		return container(n, 2)
	}
	return nil, fmt.Errorf("msgpack: invalid byte 0x%02x", c)
}
