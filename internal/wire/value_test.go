package wire

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	_ "time/tzdata" // the named-location tests need the zone database everywhere
)

type status string

func roundTrip(t *testing.T, v Value) Value {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	var out Value
	require.NoError(t, msgpack.Unmarshal(b, &out))
	return out
}

func TestRoundTrip(t *testing.T) {
	zone := time.FixedZone("AEST", 10*3600)
	when := time.Date(2024, 2, 29, 13, 14, 15, 123456789, zone)
	s := "ptr"
	cases := []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"bool", true, true},
		{"int64", int64(math.MinInt64), int64(math.MinInt64)},
		{"int", 42, int64(42)},
		{"int16", int16(-7), int64(-7)},
		{"uint64", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"float64", 1.25, 1.25},
		{"float32", float32(1.1), float32(1.1)},
		{"nan", math.Inf(-1), math.Inf(-1)},
		{"string", "héllo", "héllo"},
		{"named string", status("done"), "done"},
		{"bytes", []byte{0, 1, 2}, []byte{0, 1, 2}},
		{"empty bytes", []byte{}, []byte{}},
		{"nil bytes", []byte(nil), nil},
		{"time zone", when, when},
		{"time utc", when.UTC(), when.UTC()},
		{"time local", when.Local(), when.Local()},
		{"pointer", &s, "ptr"},
		{"nil pointer", (*string)(nil), nil},
		{"valuer", sql.NullString{String: "v", Valid: true}, "v"},
		{"null valuer", sql.NullInt64{}, nil},
		{"nil valuer pointer", (*sql.NullString)(nil), nil},
		{"int64 slice", []int64{1, 2, 3}, []int64{1, 2, 3}},
		{"int slice", []int{1, 2}, []int64{1, 2}},
		{"string slice", []string{"a", ""}, []string{"a", ""}},
		{"empty slice", []string{}, []string{}},
		{"bytes slice", [][]byte{{1}, {}}, [][]byte{{1}, {}}},
		{"time slice", []time.Time{when.UTC()}, []time.Time{when.UTC()}},
		{"bool slice", []bool{true, false}, []bool{true, false}},
		{"float slice", []float64{0.5}, []float64{0.5}},
		{"uuid array", [16]byte{1, 2}, []byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := FromGo(tc.in)
			require.NoError(t, err)
			got, err := roundTrip(t, v).Go()
			require.NoError(t, err)
			if want, ok := tc.want.(time.Time); ok {
				g, ok := got.(time.Time)
				require.True(t, ok, "%T", got)
				assert.True(t, want.Equal(g), "%v != %v", want, g)
				wn, wo := want.Zone()
				gn, gover := g.Zone()
				assert.Equal(t, wn, gn)
				assert.Equal(t, wo, gover)
				assert.Equal(t, want.Location().String(), g.Location().String())
				return
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// A time in a location loaded from the time zone database (lib/pq returns
// timestamptz values in the session's TimeZone) arrives in that same
// location, not in a fixed zone of its abbreviation; a name the receiver
// cannot load, or that gives another offset, falls back to the fixed zone.
func TestTimeInANamedLocation(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	when := time.Date(2024, 7, 4, 12, 0, 0, 5, ny)

	v, err := FromGo(when)
	require.NoError(t, err)
	got, err := roundTrip(t, v).Go()
	require.NoError(t, err)
	g := got.(time.Time)
	assert.True(t, when.Equal(g))
	assert.Equal(t, "America/New_York", g.Location().String(), "the location itself, not a fixed EDT")
	assert.Equal(t, when.Add(180*24*time.Hour).Format(time.RFC3339), g.Add(180*24*time.Hour).Format(time.RFC3339),
		"it keeps the location's rules: half a year later it is EST")

	// A fixed zone stays a fixed zone, even one named like a location.
	est := time.Date(2024, 7, 4, 12, 0, 0, 0, time.FixedZone("EST", -5*3600))
	v, err = FromGo(est)
	require.NoError(t, err)
	got, err = roundTrip(t, v).Go()
	require.NoError(t, err)
	assert.Equal(t, est, got)

	for name, s := range map[string]string{
		"unknown name":     zoneNamed + "Mars/Olympus_Mons\x00MOT",
		"malformed name":   zoneNamed + "../../etc/passwd\x00XX",
		"no abbreviation":  zoneNamed + "America/New_York",
		"offset disagrees": zoneNamed + "Asia/Tokyo\x00EDT",
		"empty name":       zoneNamed + "\x00EDT",
	} {
		v := Value{Kind: KindTime, I: when.Unix(), O: -4 * 3600, S: s}
		got, err := roundTrip(t, v).Go()
		require.NoError(t, err, name)
		g := got.(time.Time)
		assert.True(t, g.Equal(time.Unix(when.Unix(), 0)), name)
		_, off := g.Zone()
		assert.Equal(t, -4*3600, off, "%s: the sender's offset is kept", name)
		if name != "no abbreviation" {
			assert.NotEqual(t, "Asia/Tokyo", g.Location().String(), name)
			assert.NotEqual(t, "UTC", g.Location().String(), name)
		}
	}
}

// A decoder's Locations load each location once, and bound how many a
// peer can make it load.
func TestLocationsCache(t *testing.T) {
	var l Locations
	ny := l.load("America/New_York")
	require.NotNil(t, ny)
	assert.Same(t, ny, l.load("America/New_York"))
	assert.Nil(t, l.load("No/Such_Zone"))
	for i := range 2 * maxLocations {
		l.load(fmt.Sprintf("No/Zone%d", i))
	}
	assert.LessOrEqual(t, len(l.m), maxLocations)
	var nilCache *Locations
	assert.NotNil(t, nilCache.load("Europe/Paris"))
}

func TestUnsupported(t *testing.T) {
	for _, in := range []any{
		struct{ A int }{1},
		map[string]int{"a": 1},
		[]any{1, "a"},
		[][]int64{{1}},
		[]*string{nil},
		make(chan int),
		[2]int{1, 2},
	} {
		_, err := FromGo(in)
		require.Error(t, err, "%T", in)
		assert.True(t, errors.Is(err, ErrUnsupported), "%T: %v", in, err)
	}
	_, err := FromGo(struct{ A int }{1})
	assert.Contains(t, err.Error(), "struct { A int }", "the error names the Go type")
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"not an array":   {0xa1, 'x'},
		"unknown kind":   {0x92, 0x7f, 0x01},
		"wrong arity":    {0x93, uint8(KindInt64), 1, 2},
		"bad nanos":      {0x95, uint8(KindTime), 0, 0xce, 0x7f, 0xff, 0xff, 0xff, 0, 0xa0},
		"truncated":      {0x92, uint8(KindString)},
		"nested slice":   {0x93, uint8(KindSlice), uint8(KindSlice), 0x91, 0x93, uint8(KindSlice), uint8(KindInt64), 0x90},
		"mixed elements": {0x93, uint8(KindSlice), uint8(KindInt64), 0x92, 0x92, uint8(KindInt64), 1, 0x92, uint8(KindString), 0xa0},
	} {
		var v Value
		assert.Error(t, msgpack.Unmarshal(b, &v), name)
	}
}

func FuzzValueDecode(f *testing.F) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(f, err)
	for _, in := range []any{nil, int64(1), "s", []byte{1}, time.Now(), time.Now().In(ny), []int64{1, 2}, [][]byte{{1}}, 1.5, uint64(3)} {
		v, err := FromGo(in)
		require.NoError(f, err)
		b, err := msgpack.Marshal(v)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// As a node decodes values from a peer: checked first.
		var v Value
		if err := Unmarshal(b, &v); err != nil {
			return
		}
		// Whatever decodes must convert and re-encode without panicking.
		if _, err := v.Go(); err != nil {
			return
		}
		if _, err := msgpack.Marshal(v); err != nil {
			t.Fatalf("decoded value does not re-encode: %v", err)
		}
	})
}
