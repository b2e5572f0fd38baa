package lsn_test

import (
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/flypg/flypg/lsn"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want lsn.LSN
	}{
		{"0/0", 0},
		{"16/B374D848", 0x16_B374D848},
		{"16/b374d848", 0x16_B374D848},
		{"0/1", 1},
		{"1/0", 1 << 32},
		{"FFFFFFFF/FFFFFFFF", math.MaxUint64},
		{"00000000/00000001", 1},
	} {
		got, err := lsn.Parse(tc.in)
		if assert.NoError(t, err, tc.in) {
			assert.Equal(t, tc.want, got, tc.in)
		}
	}
	for _, bad := range []string{
		"", "/", "0", "0/", "/0", "16B374D848", "1/2/3", "0x16/0", "+1/0", "-1/0", " 1/0", "1/0 ",
		"G/0", "0/G", "1_0/0", "100000000/0", "0/100000000", "000000000/0", "0/0\x00",
	} {
		_, err := lsn.Parse(bad)
		assert.ErrorIs(t, err, lsn.ErrSyntax, "%q", bad)
	}
}

func TestString(t *testing.T) {
	assert.Equal(t, "0/0", lsn.LSN(0).String())
	assert.Equal(t, "16/B374D848", lsn.LSN(0x16_B374D848).String())
	assert.Equal(t, "FFFFFFFF/FFFFFFFF", lsn.LSN(math.MaxUint64).String())
	b, err := lsn.LSN(0x1_0000000A).AppendText([]byte("at "))
	require.NoError(t, err)
	assert.Equal(t, "at 1/A", string(b), "AppendText leaves the prefix alone")
}

func TestScanAndValue(t *testing.T) {
	var l lsn.LSN
	require.NoError(t, l.Scan("16/B374D848"))
	assert.Equal(t, lsn.LSN(0x16_B374D848), l)
	require.NoError(t, l.Scan([]byte("0/10")))
	assert.Equal(t, lsn.LSN(16), l)
	require.NoError(t, l.Scan(int64(42)))
	assert.Equal(t, lsn.LSN(42), l)

	assert.ErrorIs(t, l.Scan(nil), lsn.ErrNull)
	assert.ErrorIs(t, l.Scan("nope"), lsn.ErrSyntax)
	assert.Error(t, l.Scan(int64(-1)))
	assert.Error(t, l.Scan(3.5))
	assert.Equal(t, lsn.LSN(42), l, "a failed Scan leaves the value alone")

	var n sql.Null[lsn.LSN]
	require.NoError(t, n.Scan(nil))
	assert.False(t, n.Valid, "NULL scans into sql.Null[LSN]")
	require.NoError(t, n.Scan("1/2"))
	assert.Equal(t, sql.Null[lsn.LSN]{V: 1<<32 | 2, Valid: true}, n)

	v, err := lsn.LSN(0x16_B374D848).Value()
	require.NoError(t, err)
	assert.Equal(t, "16/B374D848", v)
}

func TestTextEncodings(t *testing.T) {
	type msg struct {
		At lsn.LSN `json:"at" msgpack:"at"`
	}
	in := msg{At: 0x16_B374D848}

	j, err := json.Marshal(in)
	require.NoError(t, err)
	assert.JSONEq(t, `{"at":"16/B374D848"}`, string(j))
	var outJ msg
	require.NoError(t, json.Unmarshal(j, &outJ))
	assert.Equal(t, in, outJ)
	assert.ErrorIs(t, json.Unmarshal([]byte(`{"at":"zz"}`), &outJ), lsn.ErrSyntax)

	m, err := msgpack.Marshal(in)
	require.NoError(t, err)
	var outM msg
	require.NoError(t, msgpack.Unmarshal(m, &outM))
	assert.Equal(t, in, outM)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/2/3", "", "/", "0x1/0", "100000000/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := lsn.Parse(s)
		if err != nil {
			if !errors.Is(err, lsn.ErrSyntax) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrSyntax", s, err)
			}
			return
		}
		again, err := lsn.Parse(l.String())
		if err != nil || again != l {
			t.Fatalf("Parse(%q) = %v, but Parse(String()) = %v, %v", s, l, again, err)
		}
		// Every accepted input is the canonical form up to case and leading zeros.
		var fromText lsn.LSN
		if err := fromText.UnmarshalText([]byte(s)); err != nil || fromText != l {
			t.Fatalf("UnmarshalText(%q) = %v, %v; Parse gave %v", s, fromText, err, l)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	for _, v := range []uint64{0, 1, 0x16_B374D848, math.MaxUint64, 1 << 32} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		l := lsn.LSN(v)
		got, err := lsn.Parse(l.String())
		if err != nil || got != l {
			t.Fatalf("Parse(%q) = %v, %v; want %d", l.String(), got, err, v)
		}
	})
}
