package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

// samples is one of each message, as nodes send them.
func samples() []any {
	return []any{
		&Batch{DB: DB{SysID: 7, Name: "app"}, Tx: 3, Begin: &TxOptions{Isolation: 6, ReadOnly: true}, End: TxCommit,
			Stmts: []Statement{
				{Query: "INSERT INTO t VALUES ($1, $2)", Params: &Params{OIDs: []uint32{23, 25}, Formats: []int16{1, 0},
					Values: [][]byte{{0, 0, 0, 1}, nil}, Results: []int16{1}}},
				{Query: "SELECT 1; SELECT 2", Simple: true},
				{Query: "SELECT $1", Values: []Value{{Kind: KindString, S: "v"}}, Rows: true},
			}},
		&Part{Described: true, Fields: []Field{{Name: "id", DataTypeOID: 20, Format: 1}}},
		&Part{Raw: [][][]byte{{{1}, nil, {}}}},
		&Part{Columns: []Column{{Name: "a", ScanType: "int64"}}, Rows: [][]Value{{{Kind: KindInt64, I: 9}}}},
		&Part{Stmt: &StmtEnd{RowsAffected: 2, Err: &Error{Kind: ErrPostgres, Message: "m", PG: map[string]string{"C": "23505"}}}},
		&Part{End: &End{LSN: 1 << 40, Committed: true, TxOpen: true, LostLocks: true, Err: &Error{Kind: ErrUnknown, Message: "x"}}},
		&Describe{DB: DB{Name: "app"}, Tx: 4, Query: "SELECT $1::int"},
		&Description{ParamOIDs: []uint32{23}, Fields: []Field{{Name: "int4", DataTypeOID: 23}}},
		&Proc{Name: "p", Body: []byte{0x80}, DB: &DB{Name: "app"}},
		&ProcResult{Body: []byte{1, 2}, More: true, LSN: 9, Committed: true},
		&Ping{DB: DB{SysID: 1, Name: "app"}},
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range samples() {
		b, err := Marshal(m)
		require.NoError(t, err)
		out := newLike(m)
		require.NoError(t, Unmarshal(b, out), "%T", m)
		assert.Equal(t, m, out, "%T", m)
	}
	// NULL and empty parameters stay apart.
	var p Params
	b, _ := Marshal(&Params{Values: [][]byte{nil, {}}})
	require.NoError(t, Unmarshal(b, &p))
	assert.Nil(t, p.Values[0])
	assert.NotNil(t, p.Values[1])
}

func newLike(m any) any {
	switch m.(type) {
	case *Batch:
		return &Batch{}
	case *Part:
		return &Part{}
	case *Describe:
		return &Describe{}
	case *Description:
		return &Description{}
	case *Proc:
		return &Proc{}
	case *ProcResult:
		return &ProcResult{}
	case *Ping:
		return &Ping{}
	}
	panic("unknown message")
}

// allocated reports the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Decoding cannot be a bomb: lengths the bytes cannot hold, and nesting
// beyond any message's shape, are refused before anything is allocated
// for them — these inputs made msgpack allocate until the process died.
func TestDecodingIsNoBomb(t *testing.T) {
	nested := bytes.Repeat([]byte{0x91}, 4<<20) // a 4 MiB frame of nested one-element arrays
	nested = append([]byte{0x81, 0xa1, 'z'}, nested...)
	cases := map[string][]byte{
		"Statement args claim 2^32-1 elements": {0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"Part rows claim 2^32-1 rows":          {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"bin32 of 4 GiB":                       {0x81, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff},
		"str32 of 4 GiB":                       {0x81, 0xa1, 'q', 0xdb, 0xff, 0xff, 0xff, 0xff},
		"map32 of 2^32-1 entries":              {0xdf, 0xff, 0xff, 0xff, 0xff},
		"nested arrays under an unknown key":   nested,
		"extension type":                       {0xd4, 0x01, 0x00},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			for _, m := range samples() {
				out := newLike(m)
				var err error
				n := allocated(func() { err = Unmarshal(b, out) })
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrMalformed), "%v", err)
				assert.Less(t, n, uint64(1<<20), "refused before allocating (%d bytes)", n)
			}
		})
	}
	// Many small elements within the bytes are refused past MaxElems.
	many := append([]byte{0x81, 0xa1, 'v', 0xdd}, binary.BigEndian.AppendUint32(nil, 1<<20)...)
	many = append(many, bytes.Repeat([]byte{0xc0}, 1<<20)...)
	var st Statement
	assert.ErrorIs(t, Unmarshal(many, &st), ErrMalformed)
}

// A reply stream refuses a message longer than MaxMessage before reading it.
func TestReaderBoundsMessages(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(binary.BigEndian.AppendUint32(nil, MaxMessage+1))
	var p Part
	assert.ErrorIs(t, NewReader(&buf).Read(&p), ErrMalformed)

	buf.Reset()
	w := NewWriter(&buf)
	for _, m := range samples() {
		require.NoError(t, w.Write(m))
	}
	r := NewReader(&buf)
	for _, m := range samples() {
		out := newLike(m)
		require.NoError(t, r.Read(out))
		assert.Equal(t, m, out)
	}
	assert.ErrorIs(t, r.Read(&p), io.EOF)

	buf.Reset()
	require.NoError(t, NewWriter(&buf).Write(&Part{Stmt: &StmtEnd{}}))
	cut := buf.Bytes()[:buf.Len()-1]
	assert.ErrorIs(t, NewReader(bytes.NewReader(cut)).Read(&p), io.ErrUnexpectedEOF)
}

// fuzzMessage checks that whatever decodes as a message re-encodes, and
// nothing panics or allocates without bound.
func fuzzMessage(f *testing.F, zero func() any) {
	for _, m := range samples() {
		b, err := msgpack.Marshal(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := zero()
		if err := Unmarshal(b, m); err != nil {
			return
		}
		if _, err := Marshal(m); err != nil {
			t.Fatalf("decoded %T does not re-encode: %v", m, err)
		}
	})
}

func FuzzBatchDecode(f *testing.F)       { fuzzMessage(f, func() any { return &Batch{} }) }
func FuzzPartDecode(f *testing.F)        { fuzzMessage(f, func() any { return &Part{} }) }
func FuzzDescriptionDecode(f *testing.F) { fuzzMessage(f, func() any { return &Description{} }) }
func FuzzProcResultDecode(f *testing.F)  { fuzzMessage(f, func() any { return &ProcResult{} }) }

func FuzzCheck(f *testing.F) {
	for _, m := range samples() {
		b, _ := msgpack.Marshal(m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b, DefaultLimits) != nil {
			return
		}
		// What Check accepts, msgpack decodes (or refuses) without a
		// panic, and every message type's decoder too.
		var v any
		_ = msgpack.Unmarshal(b, &v)
		for _, m := range samples() {
			_ = Unmarshal(b, newLike(m))
		}
	})
}

// A procedure's values are the user's own types: UserLimits admit what they
// encode to (extension types for time.Time, any element count the bytes
// hold) and still refuse lengths the bytes cannot hold before allocating.
func TestUserValuesAreNoBomb(t *testing.T) {
	type req struct {
		IDs []int64
		At  time.Time
	}
	in := req{IDs: []int64{1, 2, 1 << 40}, At: time.Date(2026, 12, 2, 6, 30, 0, 123, time.UTC)}
	b, err := msgpack.Marshal(in)
	require.NoError(t, err)
	var out req
	require.NoError(t, UnmarshalWithin(b, &out, UserLimits))
	assert.Equal(t, in.IDs, out.IDs)
	assert.True(t, in.At.Equal(out.At))
	assert.ErrorIs(t, Unmarshal(b, &out), ErrMalformed, "flypg's own messages still refuse extension types")

	for name, b := range map[string][]byte{
		"IDs claim 2^28 elements": {0x81, 0xa3, 'I', 'D', 's', 0xdd, 0x10, 0x00, 0x00, 0x00},
		"ext32 of 4 GiB":          {0x81, 0xa2, 'A', 't', 0xc9, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			var out req
			var err error
			n := allocated(func() { err = UnmarshalWithin(b, &out, UserLimits) })
			assert.ErrorIs(t, err, ErrMalformed)
			assert.Less(t, n, uint64(1<<20), "refused before allocating (%d bytes)", n)
		})
	}
}
