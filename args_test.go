package flypg_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type jsonDoc struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// zoned is a Valuer that returns a time in a zone of its own, as
// sql.NullTime or gorm.DeletedAt do for a value read from elsewhere.
type zoned struct{ t time.Time }

func (z zoned) Value() (driver.Value, error) { return z.t, nil }

// valuerOfValuer returns another Valuer, which pgx evaluates in turn.
type valuerOfValuer struct{ s string }

func (v valuerOfValuer) Value() (driver.Value, error) {
	return sql.NullString{String: v.s, Valid: true}, nil
}

// Every argument pgx's stdlib accepts forwards and is stored exactly as pgx
// stores it directly: each case is written by plain pgx on the primary and
// by a forwarded write from the replica region, and the two stored values
// (as PostgreSQL prints them) must be equal.
func TestForwardedArgumentsStoreWhatPgxStores(t *testing.T) {
	r := startRegions(t, nil)
	ctx := testCtx(t)
	tokyo := time.FixedZone("JST", 9*3600)
	when := time.Date(2024, 2, 29, 23, 14, 15, 123456000, tokyo)
	ptr := when
	ip4, ip6 := net.ParseIP("192.168.0.1"), net.ParseIP("2001:db8::1")
	_, ipnet, _ := net.ParseCIDR("10.1.0.0/16")
	mac, _ := net.ParseMAC("08:00:2b:01:02:03")
	one, two := int64(1), int64(2)
	cases := []struct {
		name, typ string
		arg       any
	}{
		{"duration", "interval", 90*time.Minute + 1500*time.Millisecond},
		{"pgtype array", "int4[]", pgtype.Array[int32]{Elements: []int32{1, 2, 3}, Dims: []pgtype.ArrayDimension{{Length: 3, LowerBound: 1}}, Valid: true}},
		{"flat array type", "text[]", pgtype.FlatArray[string]{"a", "b"}},
		{"map for jsonb", "jsonb", map[string]any{"a": 1, "b": []any{"x", nil}}},
		{"map for json", "json", map[string]any{"k": "v"}},
		{"struct for jsonb", "jsonb", jsonDoc{Name: "n", Tags: []string{"t1"}}},
		{"time in a zone, timestamptz", "timestamptz", when},
		{"time in a zone, timestamp", "timestamp", when},
		{"local time, timestamp", "timestamp", when.Local()},
		{"NullTime in a zone", "timestamp", sql.NullTime{Time: when, Valid: true}},
		{"Valuer with a zoned time", "timestamp", zoned{when}},
		{"pointer to time", "timestamp", &ptr},
		{"slice of times", "timestamp[]", []time.Time{when, when.UTC()}},
		{"net.IP v4", "inet", ip4},
		{"net.IP v6", "inet", ip6},
		{"net.IPNet", "cidr", ipnet},
		{"net.HardwareAddr", "macaddr", mac},
		{"netip.Addr", "inet", netip.MustParseAddr("fd00::7")},
		{"netip.Prefix", "cidr", netip.MustParsePrefix("10.2.0.0/16")},
		{"big.Int", "numeric", new(big.Int).Lsh(big.NewInt(1), 100)},
		{"pgtype.Range", "int4range", pgtype.Range[pgtype.Int4]{Lower: pgtype.Int4{Int32: 1, Valid: true}, Upper: pgtype.Int4{Int32: 9, Valid: true}, LowerType: pgtype.Inclusive, UpperType: pgtype.Exclusive, Valid: true}},
		{"fixed-size array", "int8[]", [3]int64{4, 5, 6}},
		{"2-D slice", "int8[]", [][]int64{{1, 2}, {3, 4}}},
		{"slice of pointers with nil", "int8[]", []*int64{&one, nil, &two}},
		{"Valuer returning a Valuer", "text", valuerOfValuer{"vv"}},
		{"pgtype.Numeric", "numeric", pgtype.Numeric{Int: big.NewInt(12345), Exp: -2, Valid: true}},
		{"pgtype.UUID", "uuid", pgtype.UUID{Bytes: [16]byte{1, 2, 3}, Valid: true}},
		{"uint64", "numeric", uint64(1 << 63)},
		{"named string", "text", status("done")},
		{"nil", "text", nil},
	}
	direct, err := sql.Open("pgx", r.c.Primary.DSN())
	require.NoError(t, err)
	defer direct.Close()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := fmt.Sprintf("argcase%d", i)
			r.exec(t, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (k text PRIMARY KEY, v %s)", table, table, tc.typ))
			q := fmt.Sprintf("INSERT INTO %s VALUES ($1, $2)", table)
			_, errDirect := direct.ExecContext(ctx, q, "direct", tc.arg)
			_, errFwd := r.laxDB.ExecContext(ctx, q, "forwarded", tc.arg)
			if errDirect != nil {
				require.Error(t, errFwd, "pgx refuses it (%v); so must flypg", errDirect)
				return
			}
			require.NoError(t, errFwd)
			var a, b sql.NullString
			require.NoError(t, direct.QueryRowContext(ctx, fmt.Sprintf("SELECT (SELECT v::text FROM %s WHERE k = 'direct'), (SELECT v::text FROM %s WHERE k = 'forwarded')", table, table)).Scan(&a, &b))
			assert.Equal(t, a, b, "stored value")
		})
	}

	// pgx.NamedArgs rewrite the statement, as with pgx.
	r.exec(t, "DROP TABLE IF EXISTS named; CREATE TABLE named (a int, b text)")
	_, err = r.laxDB.ExecContext(ctx, "INSERT INTO named VALUES (@a, @b)", pgx.NamedArgs{"a": 7, "b": "seven"})
	require.NoError(t, err)
	var b string
	require.NoError(t, r.laxDB.QueryRowContext(ctx, "SELECT b FROM named WHERE a = 7").Scan(&b))
	assert.Equal(t, "seven", b)
}

type status string

// A read the replica refuses as a write after its first row (a volatile
// function called on row 2) is retried on the primary like one refused on
// the first row: the app sees the primary's rows, once, and no error.
func TestReadRefusedAfterTheFirstRowIsRetried(t *testing.T) {
	r := startRegions(t, nil)
	r.exec(t, `DROP TABLE IF EXISTS late; CREATE TABLE late (n int);
		CREATE OR REPLACE FUNCTION note_late(n int) RETURNS int LANGUAGE sql VOLATILE AS $$ INSERT INTO late VALUES (n) RETURNING n $$`)
	ctx := testCtx(t)
	rows, err := r.laxDB.QueryContext(ctx, "SELECT g, CASE WHEN g = 2 THEN note_late(g) END FROM generate_series(1, 3) g")
	require.NoError(t, err)
	defer rows.Close()
	var got []int
	for rows.Next() {
		var g int
		var w sql.NullInt64
		require.NoError(t, rows.Scan(&g, &w))
		got = append(got, g)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []int{1, 2, 3}, got)
	var n int
	require.NoError(t, r.primary.QueryRowContext(ctx, "SELECT count(*) FROM late").Scan(&n))
	assert.Equal(t, 1, n, "the write ran once, on the primary")
	assert.NotZero(t, r.lax.Stats().Retried)
	_ = context.Background
}
