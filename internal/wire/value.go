package wire

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Kind tags a Value's Go type.
type Kind uint8

const (
	KindNull Kind = iota
	KindBool
	KindInt64
	KindUint64
	KindFloat64
	KindFloat32
	KindString
	KindBytes
	KindTime
	KindSlice // elements in List, all of kind Elem
)

// Value is one SQL argument or result value.
type Value struct {
	Kind Kind
	I    int64   // int64; time: Unix seconds
	U    uint64  // uint64
	F    float64 // float64, float32
	S    string  // string; time: zone name
	B    []byte  // bytes
	N    int32   // time: nanoseconds
	O    int32   // time: zone offset in seconds
	Elem Kind    // slice element kind
	List []Value // slice elements
}

// ErrUnsupported reports a Go value that cannot cross the link.
var ErrUnsupported = errors.New("flypg: argument type cannot be sent to the primary")

// maxDepth bounds slice nesting: []int64 is depth 1, [][]byte is bytes in a
// slice. Deeper nesting is refused rather than recursed into.
const maxDepth = 2

// FromGo converts an argument as database/sql hands it to the driver:
// Valuers are evaluated here, pointers dereferenced, named scalar types
// reduced to their kind, slices of scalars kept as typed lists.
func FromGo(v any) (Value, error) { return fromGo(v, 0) }

var valuerType = reflect.TypeFor[driver.Valuer]()

func fromGo(v any, depth int) (Value, error) {
	switch x := v.(type) {
	case nil:
		return Value{Kind: KindNull}, nil
	case bool:
		return Value{Kind: KindBool, I: b2i(x)}, nil
	case int64:
		return Value{Kind: KindInt64, I: x}, nil
	case int:
		return Value{Kind: KindInt64, I: int64(x)}, nil
	case int32:
		return Value{Kind: KindInt64, I: int64(x)}, nil
	case float64:
		return Value{Kind: KindFloat64, F: x}, nil
	case string:
		return Value{Kind: KindString, S: x}, nil
	case []byte:
		if x == nil {
			return Value{Kind: KindNull}, nil
		}
		return Value{Kind: KindBytes, B: x}, nil
	case time.Time:
		return timeValue(x), nil
	case driver.Valuer:
		// A nil pointer with a value-receiver Value method would panic;
		// database/sql treats it as NULL, and so do we.
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return Value{Kind: KindNull}, nil
		}
		dv, err := x.Value()
		if err != nil {
			return Value{}, fmt.Errorf("flypg: evaluating %T.Value(): %w", v, err)
		}
		if _, again := dv.(driver.Valuer); again {
			return Value{}, fmt.Errorf("%w: %T.Value() returned another Valuer", ErrUnsupported, v)
		}
		return fromGo(dv, depth)
	}
	return fromReflect(reflect.ValueOf(v), depth)
}

func fromReflect(rv reflect.Value, depth int) (Value, error) {
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return Value{Kind: KindNull}, nil
		}
		if rv.Type().Implements(valuerType) {
			return fromGo(rv.Interface(), depth)
		}
		return fromGo(rv.Elem().Interface(), depth)
	case reflect.Bool:
		return Value{Kind: KindBool, I: b2i(rv.Bool())}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return Value{Kind: KindInt64, I: rv.Int()}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return Value{Kind: KindUint64, U: rv.Uint()}, nil
	case reflect.Float32:
		return Value{Kind: KindFloat32, F: rv.Float()}, nil
	case reflect.Float64:
		return Value{Kind: KindFloat64, F: rv.Float()}, nil
	case reflect.String:
		return Value{Kind: KindString, S: rv.String()}, nil
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			if rv.Kind() == reflect.Slice && rv.IsNil() {
				return Value{Kind: KindNull}, nil
			}
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return Value{Kind: KindBytes, B: b}, nil
		}
		if rv.Kind() == reflect.Array || depth >= maxDepth-1 {
			break
		}
		if rv.IsNil() {
			return Value{Kind: KindNull}, nil
		}
		out := Value{Kind: KindSlice, List: make([]Value, rv.Len())}
		for i := range rv.Len() {
			ev, err := fromGo(rv.Index(i).Interface(), depth+1)
			if err != nil {
				return Value{}, fmt.Errorf("%w: element %d of %s", err, i, rv.Type())
			}
			if ev.Kind == KindNull || ev.Kind == KindSlice {
				return Value{}, fmt.Errorf("%w: %s (NULL or nested elements)", ErrUnsupported, rv.Type())
			}
			if i > 0 && ev.Kind != out.Elem {
				return Value{}, fmt.Errorf("%w: %s (mixed element types)", ErrUnsupported, rv.Type())
			}
			out.Elem = ev.Kind
			out.List[i] = ev
		}
		if rv.Len() == 0 {
			out.Elem = elemKind(rv.Type().Elem())
			if out.Elem == KindNull {
				return Value{}, fmt.Errorf("%w: %s", ErrUnsupported, rv.Type())
			}
		}
		return out, nil
	}
	return Value{}, fmt.Errorf("%w: %s", ErrUnsupported, rv.Type())
}

// elemKind is the kind an empty slice's elements would have had.
func elemKind(t reflect.Type) Kind {
	if t == reflect.TypeFor[time.Time]() {
		return KindTime
	}
	switch t.Kind() {
	case reflect.Bool:
		return KindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return KindInt64
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return KindUint64
	case reflect.Float32:
		return KindFloat32
	case reflect.Float64:
		return KindFloat64
	case reflect.String:
		return KindString
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return KindBytes
		}
	}
	return KindNull
}

// A time's S is its zone's abbreviation (rebuilt as a fixed zone), or one
// of these markers: UTC and Local are kept as such, and a location loaded
// from the time zone database (lib/pq returns timestamptz values in the
// session's TimeZone, e.g. America/New_York) travels by name, followed by
// the abbreviation, so that it arrives as the same *time.Location — with
// the fixed zone as the fallback where the name does not load here or
// gives another offset.
const (
	zoneUTC    = "\x00UTC"
	zoneLocal  = "\x00Local"
	zoneNamed  = "\x00Z:" // + location name + "\x00" + abbreviation
	maxZoneLen = 128
)

func timeValue(t time.Time) Value {
	name, off := t.Zone()
	v := Value{Kind: KindTime, I: t.Unix(), N: int32(t.Nanosecond()), O: int32(off), S: name}
	switch loc := t.Location(); loc {
	case time.UTC:
		v.S = zoneUTC
	case time.Local:
		v.S = zoneLocal
	default:
		// A fixed zone's name is its abbreviation; a loaded location's
		// name is not.
		if ln := loc.String(); ln != name && ln != "" && len(ln) < maxZoneLen {
			v.S = zoneNamed + ln + "\x00" + name
		}
	}
	return v
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Go converts back to the Go value the wrapped driver produced or accepts.
// A time in a named location loads it from the time zone database each
// time; GoCached shares the loads.
func (v Value) Go() (any, error) { return v.GoCached(nil) }

// Locations caches the time zone database's locations for a decoder, so
// that rows of times in a named location load it once. The zero value is
// ready; a Locations is not safe for concurrent use.
type Locations struct {
	m map[string]*time.Location // nil entry: does not load
}

// maxLocations bounds what a peer can make one decoder load.
const maxLocations = 64

func (l *Locations) load(name string) *time.Location {
	if l == nil {
		loc, err := time.LoadLocation(name)
		if err != nil {
			return nil
		}
		return loc
	}
	if loc, ok := l.m[name]; ok {
		return loc
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if l.m == nil {
		l.m = map[string]*time.Location{}
	}
	if len(l.m) < maxLocations {
		l.m[name] = loc
	}
	return loc
}

// GoCached is Go with the locations of times taken from (and added to) l,
// which may be nil.
func (v Value) GoCached(l *Locations) (any, error) {
	switch v.Kind {
	case KindNull:
		return nil, nil
	case KindBool:
		return v.I != 0, nil
	case KindInt64:
		return v.I, nil
	case KindUint64:
		return v.U, nil
	case KindFloat64:
		return v.F, nil
	case KindFloat32:
		return float32(v.F), nil
	case KindString:
		return v.S, nil
	case KindBytes:
		if v.B == nil {
			return []byte{}, nil
		}
		return v.B, nil
	case KindTime:
		return v.time(l), nil
	case KindSlice:
		return v.slice(l)
	}
	return nil, fmt.Errorf("flypg: wire value of unknown kind %d", v.Kind)
}

func (v Value) time(l *Locations) time.Time {
	t := time.Unix(v.I, int64(v.N))
	switch v.S {
	case zoneUTC:
		return t.UTC()
	case zoneLocal:
		return t.Local()
	}
	abbrev := v.S
	if rest, ok := strings.CutPrefix(v.S, zoneNamed); ok {
		name, ab, _ := strings.Cut(rest, "\x00")
		abbrev = ab
		// (A name this node would not send is not looked up: "" is UTC
		// to LoadLocation.)
		if name != "" && len(name) < maxZoneLen {
			if loc := l.load(name); loc != nil {
				if lt := t.In(loc); zoneOffset(lt) == int(v.O) {
					return lt
				}
			}
		}
	}
	return t.In(time.FixedZone(abbrev, int(v.O)))
}

func zoneOffset(t time.Time) int {
	_, off := t.Zone()
	return off
}

// slice rebuilds a typed slice ([]int64, []string, …) so that the wrapped
// driver encodes it as an array parameter.
func (v Value) slice(l *Locations) (any, error) {
	n := len(v.List)
	for _, e := range v.List {
		if e.Kind != v.Elem {
			return nil, fmt.Errorf("flypg: wire slice of %d holds a %d", v.Elem, e.Kind)
		}
	}
	switch v.Elem {
	case KindBool:
		return collect(v.List, func(e Value) bool { return e.I != 0 }, n), nil
	case KindInt64:
		return collect(v.List, func(e Value) int64 { return e.I }, n), nil
	case KindUint64:
		return collect(v.List, func(e Value) uint64 { return e.U }, n), nil
	case KindFloat64:
		return collect(v.List, func(e Value) float64 { return e.F }, n), nil
	case KindFloat32:
		return collect(v.List, func(e Value) float32 { return float32(e.F) }, n), nil
	case KindString:
		return collect(v.List, func(e Value) string { return e.S }, n), nil
	case KindBytes:
		return collect(v.List, func(e Value) []byte { return e.B }, n), nil
	case KindTime:
		return collect(v.List, func(e Value) time.Time { return e.time(l) }, n), nil
	}
	return nil, fmt.Errorf("flypg: wire slice of unknown element kind %d", v.Elem)
}

func collect[T any](list []Value, f func(Value) T, n int) []T {
	out := make([]T, n)
	for i, e := range list {
		out[i] = f(e)
	}
	return out
}

// EncodeMsgpack writes [kind, payload...] — compact, and versionable by kind.
func (v Value) EncodeMsgpack(enc *msgpack.Encoder) error {
	var err error
	switch v.Kind {
	case KindNull:
		return enc.EncodeArrayLen(0)
	case KindBool, KindInt64:
		err = errors.Join(enc.EncodeArrayLen(2), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeInt(v.I))
	case KindUint64:
		err = errors.Join(enc.EncodeArrayLen(2), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeUint(v.U))
	case KindFloat64, KindFloat32:
		err = errors.Join(enc.EncodeArrayLen(2), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeFloat64(v.F))
	case KindString:
		err = errors.Join(enc.EncodeArrayLen(2), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeString(v.S))
	case KindBytes:
		err = errors.Join(enc.EncodeArrayLen(2), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeBytes(v.B))
	case KindTime:
		err = errors.Join(enc.EncodeArrayLen(5), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeInt(v.I),
			enc.EncodeInt32(v.N), enc.EncodeInt32(v.O), enc.EncodeString(v.S))
	case KindSlice:
		if err := errors.Join(enc.EncodeArrayLen(3), enc.EncodeUint8(uint8(v.Kind)), enc.EncodeUint8(uint8(v.Elem)),
			enc.EncodeArrayLen(len(v.List))); err != nil {
			return err
		}
		for _, e := range v.List {
			if err := e.EncodeMsgpack(enc); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("flypg: encode wire value of unknown kind %d", v.Kind)
	}
	return err
}

// valueFields is the array length EncodeMsgpack writes for each kind (0:
// not a kind). An array, not a map literal: decoding runs per value.
var valueFields = [...]int{KindBool: 2, KindInt64: 2, KindUint64: 2, KindFloat64: 2, KindFloat32: 2,
	KindString: 2, KindBytes: 2, KindTime: 5, KindSlice: 3}

// DecodeMsgpack reads what EncodeMsgpack wrote, refusing anything else.
func (v *Value) DecodeMsgpack(dec *msgpack.Decoder) error { return v.decode(dec, 0) }

func (v *Value) decode(dec *msgpack.Decoder, depth int) error {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	*v = Value{}
	if n <= 0 {
		return nil // [] and nil are NULL
	}
	k, err := dec.DecodeUint8()
	if err != nil {
		return err
	}
	v.Kind = Kind(k)
	if int(v.Kind) >= len(valueFields) || valueFields[v.Kind] == 0 || n != valueFields[v.Kind] {
		return fmt.Errorf("flypg: malformed wire value: kind %d with %d fields", k, n)
	}
	switch v.Kind {
	case KindBool, KindInt64:
		v.I, err = dec.DecodeInt64()
	case KindUint64:
		v.U, err = dec.DecodeUint64()
	case KindFloat64, KindFloat32:
		v.F, err = dec.DecodeFloat64()
	case KindString:
		v.S, err = dec.DecodeString()
	case KindBytes:
		v.B, err = dec.DecodeBytes()
		if err == nil && v.B == nil {
			v.B = []byte{}
		}
	case KindTime:
		var off, nsec int32
		if v.I, err = dec.DecodeInt64(); err != nil {
			return err
		}
		if nsec, err = dec.DecodeInt32(); err != nil {
			return err
		}
		if off, err = dec.DecodeInt32(); err != nil {
			return err
		}
		if nsec < 0 || nsec >= 1e9 {
			return fmt.Errorf("flypg: malformed wire time: %d ns", nsec)
		}
		v.N, v.O = nsec, off
		v.S, err = dec.DecodeString()
	case KindSlice:
		if depth >= maxDepth-1 {
			return errors.New("flypg: malformed wire value: nested slice")
		}
		var elem uint8
		if elem, err = dec.DecodeUint8(); err != nil {
			return err
		}
		v.Elem = Kind(elem)
		var ln int
		if ln, err = dec.DecodeArrayLen(); err != nil {
			return err
		}
		if ln < 0 {
			return nil
		}
		// The frame size already bounds the bytes; this bounds the
		// allocation a lying length prefix could ask for.
		v.List = make([]Value, 0, min(ln, 1024))
		for range ln {
			var e Value
			if err := e.decode(dec, depth+1); err != nil {
				return err
			}
			if e.Kind != v.Elem {
				return fmt.Errorf("flypg: malformed wire slice: element kind %d in a slice of %d", e.Kind, v.Elem)
			}
			v.List = append(v.List, e)
		}
	}
	return err
}
