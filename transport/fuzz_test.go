package transport

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
)

var seedFrames = []frame{
	{Type: frameRequest, ID: 1, Method: "exec", Timeout: 5 * time.Second, N: 8, Body: []byte("select 1")},
	{Type: frameRequest, ID: 2, Method: "exec", N: 1 << 20, Body: []byte("first part")},
	{Type: frameRequestPart, ID: 2, Body: []byte("more")},
	{Type: frameResponse, ID: 1 << 40, Body: bytes.Repeat([]byte{0xff}, 300)},
	{Type: frameResponsePart, ID: 3, Body: []byte("part")},
	{Type: frameCredit, ID: 3, N: 1 << 20},
	{Type: frameError, ID: 3, Method: errKindPanic, Body: []byte("boom")},
	{Type: frameReject, ID: 4, Method: rejectKindDecline, Body: []byte("not the primary")},
	{Type: framePing, ID: 123456789},
	{Type: frameHello, Method: "node-a", Body: make([]byte, helloLen)},
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
		{"short array", []byte{0x95, 5, 1, 0xa0, 0, 0}},
		{"long array", []byte{0x97, 5, 1, 0xa0, 0, 0, 0xc4, 0, 0}},
		{"unknown type", []byte{0x96, 0x7f, 1, 0xa0, 0, 0, 0xc4, 0}},
		{"type zero", []byte{0x96, 0, 1, 0xa0, 0, 0, 0xc4, 0}},
		{"negative timeout", []byte{0x96, 5, 1, 0xa0, 0xff, 0, 0xc4, 0}},
		{"negative n", []byte{0x96, 5, 1, 0xa0, 0, 0xff, 0xc4, 0}},
		{"body longer than frame", []byte{0x96, 5, 1, 0xa0, 0, 0, 0xc6, 0x7f, 0xff, 0xff, 0xff}},
		{"nested array as method", []byte{0x96, 5, 1, 0x91, 0x91, 0, 0, 0xc4, 0}},
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
	for _, s := range frameSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d frameDecoder
		if len(data) > frameHeaderLen {
			if got, err := d.decode(data[frameHeaderLen:]); err == nil {
				again, err := d.decode(encodeFrame(&got).Bytes()[frameHeaderLen:])
				if err != nil {
					t.Fatalf("re-encoded frame does not decode: %v", err)
				}
				if got.Type != again.Type || got.ID != again.ID || got.Method != again.Method || got.Timeout != again.Timeout || got.N != again.N || !bytes.Equal(got.Body, again.Body) {
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

func frameSeeds() [][]byte {
	var out [][]byte
	for _, fr := range seedFrames {
		out = append(out, encodeFrame(&fr).Bytes())
	}
	return append(out, []byte{0, 0, 0, 1, 0xc1}, []byte{0xff, 0xff, 0xff, 0xff})
}

// scripted is a connection whose peer says exactly in and hears nothing.
type scripted struct{ io.Reader }

func (scripted) Write(p []byte) (int, error) { return len(p), nil }

// fuzzParams is one side of a handshake as the fuzzers and handshake tests
// run it: no TLS, fixed names.
func fuzzParams(self string, secrets ...string) *handshakeParams {
	hp := &handshakeParams{self: self, minV: MinProtocolVersion, maxV: ProtocolVersion,
		maxFrame: DefaultMaxFrameSize, maxRequest: DefaultMaxRequestSize, window: DefaultStreamWindow, rng: rand.Reader}
	for _, s := range secrets {
		hp.secrets = append(hp.secrets, newSpakeSecret([]byte(s), defaultLabel))
	}
	return hp
}

// recorded runs a real handshake between client and server parameters over
// a pipe and returns what each side wrote, and both sides' errors.
func recorded(client, server *handshakeParams, want string) (fromClient, fromServer []byte, cerr, serr error) {
	cc, sc := net.Pipe()
	var cb, sb bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := serverHandshake(io.MultiWriter(sc, &sb), newFrameReader(sc, handshakeMaxFrame), server)
		_ = sc.Close()
		done <- err
	}()
	_, cerr = clientHandshake(io.MultiWriter(cc, &cb), newFrameReader(cc, handshakeMaxFrame), client, 0, want)
	_ = cc.Close()
	serr = <-done
	return cb.Bytes(), sb.Bytes(), cerr, serr
}

func handshakeSeeds() [][]byte {
	fromClient, fromServer, _, _ := recorded(fuzzParams("client", testSecret), fuzzParams("server", testSecret), "server")
	wrongC, wrongS, _, _ := recorded(fuzzParams("client", newSecret()), fuzzParams("server", testSecret, newSecret()), "server")
	return [][]byte{
		fromClient, fromServer, wrongC, wrongS,
		encodeFrame(&frame{Type: frameHello, Method: "client", Body: make([]byte, helloLen)}).Bytes(),
		encodeFrame(&frame{Type: frameChallenge, Method: "server", Body: make([]byte, challengeHead)}).Bytes(),
		{0, 0, 0, 3, 0x93, 1, 2},
	}
}

// FuzzHandshake: no input panics either side of the handshake, and no input
// authenticates to a side holding a key (a recorded exchange, replayed,
// included: each side's fresh share makes old proofs worthless).
func FuzzHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add(s)
	}
	server := fuzzParams("server", testSecret)
	client := fuzzParams("client", testSecret)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := newFrameReader(bytes.NewReader(data), handshakeMaxFrame)
		if _, err := serverHandshake(scripted{}, fr, server); err == nil {
			t.Fatal("server accepted a client without the key")
		}
		fr = newFrameReader(bytes.NewReader(data), handshakeMaxFrame)
		if _, err := clientHandshake(scripted{}, fr, client, 0, "server"); err == nil {
			t.Fatal("client accepted a server without the key")
		}
	})
}

// FuzzMetaDecode: a member's meta, however odd, never panics us nor makes
// us allocate beyond its size.
func FuzzMetaDecode(f *testing.F) {
	for _, s := range metaSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := decodeMeta(data); err == nil {
			_ = m.commonVersion(MinProtocolVersion, ProtocolVersion)
			if len(m.Databases) > len(data) {
				t.Fatalf("%d databases from %d bytes", len(m.Databases), len(data))
			}
		}
	})
}

func metaSeeds() [][]byte {
	enc, err := Meta{Region: "iad", RPCAddr: "[fdaa::3]:7947", Version: ProtocolVersion, MinVersion: MinProtocolVersion, Primary: true,
		Databases: []DatabaseMeta{{SysID: 7312345678901234567, Name: "app", Primary: true}, {SysID: 1, Name: "other"}}}.encode()
	if err != nil {
		panic(err)
	}
	return [][]byte{
		enc,
		{0x81, 0xa1, 'r', 0x91, 0x91, 0x91},
		{0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff}, // 4 billion databases
		{0x81, 0xa1, 'r', 0xdb, 0x7f, 0xff, 0xff, 0xff}, // a 2 GiB region
	}
}

// TestFuzzCorpus checks the committed seed corpora under testdata/fuzz,
// where CI's short fuzz runs (go test -fuzz) start, and rewrites them from
// the seeds above with FLYPG_WRITE_CORPUS=1 (after a wire format change).
func TestFuzzCorpus(t *testing.T) {
	corpora := map[string][][]byte{
		"FuzzFrameDecode": frameSeeds(),
		"FuzzHandshake":   handshakeSeeds(),
		"FuzzMetaDecode":  metaSeeds(),
		"FuzzMsgpackCheck": append(metaSeeds(), []byte{0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0xc0},
			[]byte{0xc6, 0xff, 0xff, 0xff, 0xff}),
	}
	for name, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", name)
		if os.Getenv("FLYPG_WRITE_CORPUS") != "" {
			require.NoError(t, os.MkdirAll(dir, 0o755))
			for i, s := range seeds {
				body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
				require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644))
			}
		}
		entries, err := os.ReadDir(dir)
		require.NoError(t, err, "the corpus of %s is committed", name)
		assert.GreaterOrEqual(t, len(entries), len(seeds), "%s: every seed is in the corpus", name)
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			require.NoError(t, err)
			assert.True(t, bytes.HasPrefix(b, []byte("go test fuzz v1\n[]byte(")), "%s/%s is a corpus file", name, e.Name())
		}
	}
}

// FuzzMsgpackCheck: the bounds check never panics, and whatever it passes
// msgpack decodes without allocating beyond a small multiple of the input.
func FuzzMsgpackCheck(f *testing.F) {
	for _, s := range metaSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkMsgpack(data, maxMetaNesting) != nil {
			return
		}
		var v any
		_ = msgpack.Unmarshal(data, &v) // must not panic or blow up
	})
}
