package lsn

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
)

// LSN is a PostgreSQL WAL position (the pg_lsn type): a byte offset into the
// write-ahead log. Two LSNs compare as integers; the zero LSN is "0/0", which
// every replica has replayed.
type LSN uint64

// ErrSyntax is wrapped by the errors of Parse and UnmarshalText.
var ErrSyntax = errors.New("invalid LSN syntax")

// ErrNull is returned by Scan for SQL NULL. pg_last_wal_replay_lsn() is NULL on
// a primary, and silently turning that into "0/0" would make a primary look
// like a replica that has replayed nothing; scan into sql.Null[lsn.LSN] where
// NULL is expected.
var ErrNull = errors.New("lsn: cannot scan NULL into lsn.LSN (use sql.Null[lsn.LSN])")

// maxPart is PostgreSQL's MAXPG_LSNCOMPONENT: each half of "X/X" is a 32-bit
// number of at most 8 hex digits.
const maxPart = 8

// Parse reads the text form PostgreSQL prints, "X/X" (e.g. "16/B374D848"):
// two hexadecimal numbers of 1 to 8 digits, either case, separated by a slash.
// It accepts exactly what the server's pg_lsn input function accepts, so a
// value that parses here can be sent as $1::pg_lsn and vice versa.
func Parse(s string) (LSN, error) {
	hi, lo, ok := cut(s)
	if !ok {
		return 0, fmt.Errorf("lsn: parse %q: %w: want two hex numbers separated by \"/\"", s, ErrSyntax)
	}
	h, err := parsePart(s, "high", hi)
	if err != nil {
		return 0, err
	}
	l, err := parsePart(s, "low", lo)
	if err != nil {
		return 0, err
	}
	return LSN(h<<32 | l), nil
}

func cut(s string) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func parsePart(s, which, part string) (uint64, error) {
	switch {
	case part == "":
		return 0, fmt.Errorf("lsn: parse %q: %w: empty %s part", s, ErrSyntax, which)
	case len(part) > maxPart:
		return 0, fmt.Errorf("lsn: parse %q: %w: %s part has more than %d hex digits", s, ErrSyntax, which, maxPart)
	}
	for i := 0; i < len(part); i++ {
		if !isHex(part[i]) {
			return 0, fmt.Errorf("lsn: parse %q: %w: %q is not a hex digit", s, ErrSyntax, part[i])
		}
	}
	// Cannot fail: at most 8 hex digits, all checked (ParseUint alone would
	// also accept "0x" prefixes and underscores).
	v, _ := strconv.ParseUint(part, 16, 32)
	return v, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// String returns the form PostgreSQL prints: upper-case hex, no padding.
func (l LSN) String() string {
	b, _ := l.AppendText(make([]byte, 0, 17))
	return string(b)
}

// AppendText appends the text form of l to b without an intermediate string.
func (l LSN) AppendText(b []byte) ([]byte, error) {
	b = appendHex(b, uint32(l>>32))
	b = append(b, '/')
	return appendHex(b, uint32(l)), nil
}

func appendHex(b []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var buf [8]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[v&0xF]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}

// MarshalText makes an LSN a readable string in JSON, msgpack and logs.
func (l LSN) MarshalText() ([]byte, error) { return l.AppendText(nil) }

// UnmarshalText is Parse for encoding packages.
func (l *LSN) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Scan implements sql.Scanner for a pg_lsn column, which database/sql drivers
// deliver as text (string or []byte). A non-negative int64 is accepted too,
// for queries that select (lsn - '0/0')::bigint. NULL is an error (ErrNull).
func (l *LSN) Scan(src any) error {
	var (
		v   LSN
		err error
	)
	switch src := src.(type) {
	case string:
		v, err = Parse(src)
	case []byte:
		v, err = Parse(string(src))
	case int64:
		if src < 0 {
			return fmt.Errorf("lsn: scan %d: %w: negative", src, ErrSyntax)
		}
		v = LSN(src)
	case nil:
		return ErrNull
	default:
		return fmt.Errorf("lsn: cannot scan %T into lsn.LSN", src)
	}
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Value implements driver.Valuer with the text form, so an LSN works as a
// $1::pg_lsn argument with every driver (a bare integer would not cast).
func (l LSN) Value() (driver.Value, error) { return l.String(), nil }
