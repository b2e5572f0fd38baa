package walstream

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func xlogData(start, walEnd uint64, data []byte) []byte {
	b := make([]byte, 25, 25+len(data))
	b[0] = 'w'
	binary.BigEndian.PutUint64(b[1:9], start)
	binary.BigEndian.PutUint64(b[9:17], walEnd)
	return append(b, data...)
}

func keepalive(walEnd uint64, reply bool) []byte {
	b := make([]byte, 18)
	b[0] = 'k'
	binary.BigEndian.PutUint64(b[1:9], walEnd)
	if reply {
		b[17] = 1
	}
	return b
}

func TestParseCopyData(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    Event
		dataEnd uint64
		ok      bool
		wantErr bool
	}{
		{"WAL", xlogData(0x1000, 0x1100, make([]byte, 0x80)), Event{WALEnd: 0x1100}, 0x1080, true, false},
		{"WAL past the reported end", xlogData(0x1000, 0x1010, make([]byte, 0x80)), Event{WALEnd: 0x1080}, 0x1080, true, false},
		{"WAL, no data", xlogData(0x2000, 0x2000, nil), Event{WALEnd: 0x2000}, 0x2000, true, false},
		{"keepalive", keepalive(0x3000, false), Event{WALEnd: 0x3000}, 0, true, false},
		{"keepalive asking for a reply", keepalive(0x3000, true), Event{WALEnd: 0x3000, ReplyRequested: true}, 0, true, false},
		{"unknown kind", []byte{'x', 1, 2}, Event{}, 0, false, false},
		{"empty", nil, Event{}, 0, false, true},
		{"short WAL header", xlogData(1, 2, nil)[:24], Event{}, 0, false, true},
		{"short keepalive", keepalive(1, true)[:17], Event{}, 0, false, true},
		{"overflowing WAL", xlogData(^uint64(0)-1, 0, make([]byte, 8)), Event{}, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, dataEnd, ok, err := parseCopyData(tc.in)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, ev)
			assert.Equal(t, tc.dataEnd, dataEnd)
		})
	}
}

// Whatever a server (or something posing as one) sends, parsing returns an
// error or an event, never panics, and never reports WAL before the data's
// own end.
func FuzzParseCopyData(f *testing.F) {
	f.Add(xlogData(0x1000, 0x1100, []byte("wal")))
	f.Add(keepalive(0x3000, true))
	f.Add([]byte{'w'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, dataEnd, ok, err := parseCopyData(b)
		if err != nil || !ok {
			return
		}
		if b[0] == 'w' {
			assert.GreaterOrEqual(t, ev.WALEnd, dataEnd)
		}
	})
}

func TestLSNText(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "0/0306EE20"} {
		v, err := ParseLSN(s)
		require.NoError(t, err, s)
		back, err := ParseLSN(FormatLSN(v))
		require.NoError(t, err)
		assert.Equal(t, v, back)
	}
	v, _ := ParseLSN("16/B374D848")
	assert.Equal(t, uint64(0x16_B374D848), v)
	for _, s := range []string{"", "/", "1/", "/1", "123456789/0", "x/1", "1/-1", "+1/1", "1/0x1"} {
		_, err := ParseLSN(s)
		assert.Error(t, err, s)
	}
}
