package transport

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var seedFrames = []frame{
	{Type: frameRequest, ID: 1, Method: "exec", Timeout: 5 * time.Second, Body: []byte("select 1")},
	{Type: frameResponse, ID: 1 << 40, Body: bytes.Repeat([]byte{0xff}, 300)},
	{Type: frameError, ID: 3, Method: errKindPanic, Body: []byte("boom")},
	{Type: framePing, ID: 123456789},
	{Type: frameHello, ID: ProtocolVersion, Method: "node-a", Body: make([]byte, nonceLen)},
	{Type: frameGoAway},
}

func TestFrameRoundTrip(t *testing.T) {
	var d frameDecoder
	for _, f := range seedFrames {
		fb := encodeFrame(&f)
		fr := newFrameReader(bytes.NewReader(fb.Bytes()), DefaultMaxFrameSize)
		got, err := fr.read()
		require.NoError(t, err)
		assert.Equal(t, f, got)
		got, err = d.decode(fb.Bytes()[frameHeaderLen:])
		require.NoError(t, err)
		assert.Equal(t, f, got)
		fb.free()
	}
}

func TestFrameDecodeRejects(t *testing.T) {
	var d frameDecoder
	valid := encodeFrame(&frame{Type: frameRequest, ID: 1, Method: "m", Body: []byte("body")}).Bytes()[frameHeaderLen:]
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not an array", []byte{0xc0}},
		{"short array", []byte{0x94, 5, 1, 0xa0, 0}},
		{"long array", []byte{0x96, 5, 1, 0xa0, 0, 0xc4, 0, 0}},
		{"unknown type", []byte{0x95, 0x7f, 1, 0xa0, 0, 0xc4, 0}},
		{"type zero", []byte{0x95, 0, 1, 0xa0, 0, 0xc4, 0}},
		{"negative timeout", []byte{0x95, 5, 1, 0xa0, 0xff, 0xc4, 0}},
		{"body longer than frame", []byte{0x95, 5, 1, 0xa0, 0, 0xc6, 0x7f, 0xff, 0xff, 0xff}},
		{"nested array as method", []byte{0x95, 5, 1, 0x91, 0x91, 0, 0xc4, 0}},
		{"trailing bytes", append(append([]byte(nil), valid...), 0)},
		{"truncated", valid[:len(valid)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.decode(tc.in)
			require.Error(t, err)
		})
	}
}

// FuzzFrameDecode: no input panics the decoder or the reader, and whatever
// decodes re-encodes to something that decodes the same.
func FuzzFrameDecode(f *testing.F) {
	for _, fr := range seedFrames {
		f.Add(encodeFrame(&fr).Bytes())
	}
	f.Add([]byte{0, 0, 0, 1, 0xc1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var d frameDecoder
		if len(data) > frameHeaderLen {
			if got, err := d.decode(data[frameHeaderLen:]); err == nil {
				again, err := d.decode(encodeFrame(&got).Bytes()[frameHeaderLen:])
				if err != nil {
					t.Fatalf("re-encoded frame does not decode: %v", err)
				}
				if got.Type != again.Type || got.ID != again.ID || got.Method != again.Method || got.Timeout != again.Timeout || !bytes.Equal(got.Body, again.Body) {
					t.Fatalf("round trip changed the frame: %+v vs %+v", got, again)
				}
			}
		}
		fr := newFrameReader(bytes.NewReader(data), 1024)
		for range 16 {
			if _, err := fr.read(); err != nil {
				break
			}
		}
	})
}

// scripted is a connection whose peer says exactly in and hears nothing.
type scripted struct{ io.Reader }

func (scripted) Write(p []byte) (int, error) { return len(p), nil }

// FuzzHandshake: no input panics either side of the handshake, and no input
// without the key authenticates.
func FuzzHandshake(f *testing.F) {
	key := deriveKey([]byte(testSecret), defaultLabel, "link")
	hello := encodeFrame(&frame{Type: frameHello, ID: ProtocolVersion, Method: "client", Body: make([]byte, nonceLen)}).Bytes()
	auth := encodeFrame(&frame{Type: frameAuth, Body: make([]byte, macLen)}).Bytes()
	challenge := encodeFrame(&frame{Type: frameChallenge, ID: ProtocolVersion, Method: "server", Body: make([]byte, nonceLen+macLen)}).Bytes()
	f.Add(append(append([]byte(nil), hello...), auth...))
	f.Add(challenge)
	f.Add([]byte{0, 0, 0, 3, 0x93, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), handshakeMaxFrame)
		if _, err := serverHandshake(scripted{}, fr, key, "server"); err == nil {
			t.Fatal("server accepted a client without the key")
		}
		fr = newFrameReader(bytes.NewReader(data), handshakeMaxFrame)
		if _, err := clientHandshake(scripted{}, fr, key, "client", "server"); err == nil {
			t.Fatal("client accepted a server without the key")
		}
	})
}

// FuzzMetaDecode: a member's meta, however odd, never panics us.
func FuzzMetaDecode(f *testing.F) {
	enc, err := Meta{Region: "iad", RPCAddr: "10.0.0.1:7947", Version: ProtocolVersion, Primary: true}.encode()
	require.NoError(f, err)
	f.Add(enc)
	f.Add([]byte{0x81, 0xa1, 'r', 0x91, 0x91, 0x91})
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := decodeMeta(data); err == nil {
			_ = m.routable()
		}
	})
}
