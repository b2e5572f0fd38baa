package wire

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Marshal encodes a message.
func Marshal(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("flypg: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes a message from a peer, refusing malformed input — and
// input whose declared lengths could make the decoder allocate more than a
// small multiple of its size (see Limits) — with an error wrapping
// ErrMalformed.
func Unmarshal(b []byte, v any) error { return UnmarshalWithin(b, v, DefaultLimits) }

// UnmarshalWithin is Unmarshal within lim (UserLimits for a procedure's
// values).
func UnmarshalWithin(b []byte, v any, lim Limits) error {
	if err := Check(b, lim); err != nil {
		return fmt.Errorf("flypg: decode %T: %w", v, err)
	}
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("flypg: decode %T: %w: %w", v, ErrMalformed, err)
	}
	return nil
}
