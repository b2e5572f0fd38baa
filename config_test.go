package flypg

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplicaURL(t *testing.T) {
	cases := []struct {
		name, url, region, primary, want string
		wantErr                          string
	}{
		{name: "dev", url: "postgres://u:p@db.internal:5432/app", want: "postgres://u:p@db.internal:5432/app"},
		{name: "primary region", url: "postgres://u:p@db.internal:5432/app", region: "syd", primary: "syd",
			want: "postgres://u:p@top1.nearest.of.db.internal:5432/app"},
		{name: "replica region", url: "postgres://u:p@db.internal:5432/app?sslmode=disable", region: "lax", primary: "syd",
			want: "postgres://u:p@top1.nearest.of.db.internal:5433/app?sslmode=disable"},
		{name: "backup region without a replica", url: "postgres://u:p@myapp-db.internal:5432/myapp", region: "ord", primary: "syd",
			want: "postgres://u:p@top1.nearest.of.myapp-db.internal:5433/myapp"},
		{name: "prefix kept", url: "postgres://u@top1.nearest.of.db.internal:5432/app", region: "lax", primary: "syd",
			want: "postgres://u@top1.nearest.of.db.internal:5433/app"},
		{name: "top2 becomes top1", url: "postgres://u@top2.nearest.of.db.internal:5432/app", region: "lax", primary: "syd",
			want: "postgres://u@top1.nearest.of.db.internal:5433/app"},
		{name: "flycast host unchanged", url: "postgres://u@db.flycast:5432/app", region: "lax", primary: "syd",
			want: "postgres://u@db.flycast:5433/app"},
		{name: "flycast in the primary region", url: "postgres://u@db.flycast:5432/app", region: "syd", primary: "syd",
			want: "postgres://u@db.flycast:5432/app"},
		{name: "no port", url: "postgresql://db.internal/app", region: "lax", primary: "syd",
			want: "postgresql://top1.nearest.of.db.internal:5433/app"},
		{name: "no port, primary region", url: "postgresql://db.internal/app", region: "syd", primary: "syd",
			want: "postgresql://top1.nearest.of.db.internal/app"},
		{name: "ip host in the primary region", url: "postgres://u@[fdaa::3]:5432/app", region: "syd", primary: "syd",
			want: "postgres://u@[fdaa::3]:5432/app"},
		{name: "key=value", url: "host=db.internal port=5432 dbname=app user=u password='p w'", region: "lax", primary: "syd",
			want: "host='top1.nearest.of.db.internal' port='5433' dbname='app' user='u' password='p w'"},
		{name: "ip host in a replica region", url: "postgres://[fdaa::3]:5432/app", region: "lax", primary: "syd", wantErr: "FLYPG_DSN"},
		{name: "localhost in a replica region", url: "postgres://localhost/app", region: "lax", primary: "syd", wantErr: "FLYPG_DSN"},
		{name: "several hosts", url: "postgres://a.internal,b.internal/app", region: "lax", primary: "syd", wantErr: "exactly one"},
		{name: "not postgres", url: "mysql://db/app", region: "lax", primary: "syd", wantErr: "scheme"},
		// pgx reads a URL only by its exact prefix: anything else would be
		// read here as a URL and by pgx as keyword/value settings.
		{name: "scheme in capitals", url: "POSTGRES://db.internal?dbname=0=0", region: "lax", primary: "syd", wantErr: "scheme"},
		{name: "no host", url: "postgres:///app", region: "lax", primary: "syd", wantErr: "host"},
		{name: "garbage", url: "::", region: "lax", primary: "syd", wantErr: "parse"},
		{name: "host in the query", url: "postgres://db.internal/app?host=other.internal", region: "lax", primary: "syd", wantErr: "host in its query"},
		{name: "port in the query", url: "postgres://db.internal/app?sslmode=disable&%70ort=5432", region: "syd", primary: "syd", wantErr: "port in its query"},
		// pgx would read the database as "app\n": refused, not trimmed
		// into a different database than the one pgx would open.
		{name: "trailing newline", url: "postgres://db.internal/app\n", region: "syd", primary: "syd", wantErr: "control"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReplicaURL(tc.url, tc.region, tc.primary)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// ReplicaURL reads a connection string exactly as pgx does: every setting
// pgx sees in the primary's string survives into the replica's, and only
// host and port change. Each case was read differently by the first
// parser (white space other than spaces, a trailing backslash, the
// "database" alias, a case-folded scheme, "://" inside a value), which
// dropped, added or rewrote settings — the database among them.
func TestReplicaURLReadsConnectionStringsAsPgxDoes(t *testing.T) {
	for _, in := range []string{
		"host=db.internal\rdbname=app user=u",
		"host=db.internal\fdbname=app\vuser=u",
		"host=db.internal dbname=app\tuser=u",
		"host=db.internal dbname=app password=p\\",
		"host=db.internal database=app",
		"host=db.internal application_name=a://b dbname=app",
		"host=db.internal user= dbname=app",
		"host = db.internal  dbname = 'a p\\'p' ",
	} {
		t.Run(in, func(t *testing.T) {
			before, err := pgconn.ParseConfig(in)
			require.NoError(t, err)
			for _, region := range []string{"lax", "syd"} {
				out, err := ReplicaURL(in, region, "syd")
				if err != nil {
					// Refusing is allowed (an address host outside the
					// primary region); misreading is not.
					assert.ErrorContains(t, err, "FLYPG_DSN")
					continue
				}
				after := assertRewrittenAlike(t, before, out)
				if region == "lax" {
					assert.Equal(t, uint16(5433), after.Port, out)
					assert.Equal(t, nearest+before.Host, after.Host, out)
				}
				dbOut, err := withDatabase(in, "other")
				require.NoError(t, err)
				other, err := pgconn.ParseConfig(dbOut)
				require.NoError(t, err, dbOut)
				assert.Equal(t, "other", other.Database, dbOut)
				assert.Equal(t, before.RuntimeParams, other.RuntimeParams, dbOut)
			}
		})
	}
}

// Strings that pgx and lib/pq (or net/url) read differently, or that name
// a host the rewrite would not replace, are refused with a reason — never
// rewritten into a string that connects elsewhere for one of them. Each
// was accepted by the first rewrite (found by review).
func TestReplicaURLRefusesAmbiguousStrings(t *testing.T) {
	cases := []struct{ in, want string }{
		{"postgres://db.internal/zzz?dbname=app", "both in the URL and in its query"},
		{"postgres://db.internal/?dbname=x&dbname=y", "twice"},
		{"postgres://db.internal?database=x&dbname=y", "twice"},
		{"host=db.internal database=x dbname=y", "twice"},
		{"postgres://u:pw@db.internal/app?user=other", "both in the URL"},
		{"postgres://u:pw@db.internal/app?password=other", "both in the URL"},
		{"postgres://db.internal/app?sslmode=disable&sslmode=require", "twice"},
		{"postgres://db.internal/app?ssl=true", "sslmode=require"},
		{"postgres://db.internal/app?application_name=a+b", "percent-encode"},
		{"postgres://db.internal/app?hostaddr=10.0.0.1", "hostaddr"},
		{"host=db.internal hostaddr=10.0.0.1 dbname=app", "hostaddr"},
		{"postgres://u:p@db.internal/app?service=foo", "service"},
		{"host=db.internal service=foo", "service"},
		{"host=db.internal\u00a0dbname=app", "neither a DNS name"},
		{"postgres://db.internal/app?h%6Fst%3Devil.example%20x=1", "plain word"},
		{"postgres://db.internal:5432/app?x%3D1%20password%3Dother%20user%3Dadmin%20y=1", "plain word"},
		{"postgres://db.internal:5432/app?user=", "to nothing"},
		{"postgres://u:p@db.internal/app?sslmode=", "to nothing"},
		{"postgres://u:pw@]/app", "neither a DNS name"},
		{"postgres://u:pw@db.internal:99999/app", "port is not a number"},
		{" postgres://=x host=db.internal dbname=app", "plain word"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			out, err := ReplicaURL(tc.in, "lax", "syd")
			assert.ErrorContains(t, err, tc.want, "got %q", out)
		})
	}
	t.Run("PGHOST with several hosts", func(t *testing.T) {
		t.Setenv("PGHOST", "a.internal,b.internal")
		_, err := ReplicaURL("dbname=app user=u", "lax", "syd")
		assert.ErrorContains(t, err, "exactly one")
	})
	t.Run("PGSERVICE", func(t *testing.T) {
		t.Setenv("PGSERVICE", "foo")
		_, err := ReplicaURL("postgres://db.internal/app", "lax", "syd")
		assert.ErrorContains(t, err, "PGSERVICE")
	})
}

// The URLs users actually have are accepted, and read after the rewrite by
// pgx and lib/pq as before it but for the host and port (refusing any of
// them would be as bad as misreading it).
func TestReplicaURLAcceptsOrdinaryURLs(t *testing.T) {
	for _, in := range []string{
		"postgres://user:pass@myapp-db.flycast:5432/myapp?sslmode=disable",
		"postgres://user:pass@myapp-db.flycast:5432",
		"postgres://postgres:s3cr3t@myapp-db.internal:5432/myapp",
		"postgresql://postgres.abcd:pw@aws-0-us-east-1.pooler.supabase.com:6543/postgres?sslmode=require",
		"postgresql://u:pw@ep-cool-name-123456.us-east-2.aws.neon.tech/neondb?sslmode=require&channel_binding=require",
		"postgres://u:pw@db.internal/app?options=-c%20search_path%3Dx",
		"postgres://u:%25%26%3D%23%40%3F%2F%3A%20%27%22@db.internal/app",
		"postgres://u:p,;=!*()$'~&@db.internal/app",
		"postgres://u:p@db.internal/caf%C3%A9",
		"postgres://u:p@db.internal/café",
		"postgres://u:p@db.internal:5432?application_name=me@x",
		"postgres://u:p@my_db.internal/app",
		"host=db.internal dbname=café user=u password=pässwort",
		"host=db.internal port=5432 dbname=app user=u password='with space' sslmode=require",
	} {
		t.Run(in, func(t *testing.T) {
			before, err := pgconn.ParseConfig(in)
			require.NoError(t, err)
			for _, region := range []string{"lax", "syd"} {
				out, err := ReplicaURL(in, region, "syd")
				require.NoError(t, err, region)
				after := assertRewrittenAlike(t, before, out)
				assert.Equal(t, len(before.Fallbacks), len(after.Fallbacks), out)
			}
		})
	}
}

// assertRewrittenAlike: pgx reads out as it read the string before the
// rewrite (before) but for host and port, and lib/pq reads out as pgx.
func assertRewrittenAlike(t *testing.T, before *pgconn.Config, out string) *pgconn.Config {
	t.Helper()
	after, err := pgconn.ParseConfig(out)
	require.NoError(t, err, out)
	assert.Equal(t, before.Database, after.Database, out)
	assert.Equal(t, before.User, after.User, out)
	assert.Equal(t, before.Password, after.Password, out)
	assert.Equal(t, before.RuntimeParams, after.RuntimeParams, out)
	assertPQReadsAsPgx(t, out, after)
	return after
}

// A password from a password file is found by host and port, so the
// rewritten host has none: said as such, not as a failed rewrite.
func TestReplicaURLPasswordFile(t *testing.T) {
	pass := t.TempDir() + "/pgpass"
	require.NoError(t, os.WriteFile(pass, []byte("db.internal:5432:app:u:filepw\n"), 0o600))
	t.Setenv("PGPASSFILE", pass)
	_, err := ReplicaURL("postgres://u@db.internal:5432/app", "lax", "syd")
	require.Error(t, err)
	assert.ErrorContains(t, err, "password file")
	assert.ErrorContains(t, err, "top1.nearest.of.db.internal:5433")
	assert.NotContains(t, err.Error(), "filepw")
}

// DNS names are compared without case and with or without the trailing
// dot: the prefix is never doubled and .flycast never prefixed.
func TestReplicaURLComparesNamesAsDNSDoes(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://db.flycast./app":                 "postgres://db.flycast.:5433/app",
		"postgres://Top1.Nearest.Of.db.internal/app": "postgres://Top1.Nearest.Of.db.internal:5433/app",
		"postgres://TOP2.nearest.of.db.internal/app": "postgres://top1.nearest.of.db.internal:5433/app",
		"postgres://DB.Internal/app":                 "postgres://top1.nearest.of.DB.Internal:5433/app",
	} {
		got, err := ReplicaURL(in, "lax", "syd")
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ReplicaURL("postgres://LOCALHOST/app", "lax", "syd")
	assert.ErrorContains(t, err, "address")
}

// An explicit FLYPG_DSN is pointed at the primary URL's database; a primary
// URL that names none means the user's database, as the server reads it
// (it was pointed at "", which opens the DSN's default instead).
func TestLocalDSNGetsThePrimaryURLsDatabase(t *testing.T) {
	for _, tc := range []struct{ primary, dsn string }{
		{"postgres://app:pw@db.internal:5432", "postgres://postgres:pw@localhost:5433/postgres"},
		{"postgres://app:pw@db.internal:5432/app", "host=localhost port=5433 user=postgres dbname=postgres"},
		{"postgres://x:pw@db.internal:5432/app", "postgres://postgres@/postgres?host=/var/run/postgresql"},
	} {
		c := Config{DatabaseURL: tc.primary, DSN: tc.dsn, Region: "lax", PrimaryRegion: "syd"}
		local, err := c.localFor(tc.primary)
		require.NoError(t, err, tc.dsn)
		cfg, err := pgconn.ParseConfig(local)
		require.NoError(t, err, local)
		assert.Equal(t, "app", cfg.Database, local)
		assert.Equal(t, "postgres", cfg.User, local)
	}
}

// A password in a URL that does not parse must not reach the error, which
// apps log.
func TestReplicaURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{
		"postgres://admin:hunter2-s3cret@db.internal:port/app",
		"postgres://admin:hunter2-s3cret@[fdaa::3/app",
		"host=db.internal port=x password=hunter2-s3cret",
		// Characters that cut a URL inside the password, where the
		// parser's own error quotes the part before them.
		"postgres://admin:hunter2-s3cret#x@db.internal:5432/app",
		"postgres://admin:hunter2-s3cret?x@db.internal:5432/app",
		"postgres://admin:hunter2-s3cret/x@db.internal:5432/app",
		"postgres://ad min:hunter2-s3cret@db.internal:5432/app",
		"postgres://admin:hunter2-s3cret\x7f@db.internal:5432/app",
		"postgres://admin:hunter2-s3cret\u00e9@db.internal:5432/app",
		// Parsers quote the piece of a mistyped password they stumble on.
		"host=db.internal password=hunter2 s3cret dbname=app",
		"postgres://u@db.internal/app?password=hunter2&s3cret",
		"postgres://u@db.internal/app?password=hunter2=s3cret",
		"postgres://u:hunter2%zzs3cret@db.internal/app",
		// Quotes and bytes a parser escapes when it quotes them (found by
		// review: the escaped piece no longer matched the string).
		"host=db.internal password=hunter2 \"s3cret dbname=app",
		"host=db.internal password=hunter2\" s3cret\" x dbname=app",
		"host=db.internal password='hunter2'\"s3cret' dbname=app",
		"host=db.internal password=hunter2 s3cret\u00a0x dbname=app",
		"host=db.internal password=hunter2 s3cr\x7fet dbname=app",
		"host=db.internal password=hunter2 s3cret\xff dbname=app",
		"host=db.internal sslpassword=hunter2 s3cret dbname=app",
		"postgres://u@db.internal/app?password=hunter2&s3\"cret",
		"postgres://u@db.internal/app?password=hunter2&s3\"cr%zzet=1",
	} {
		_, err := ReplicaURL(u, "lax", "syd")
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "hunter2-s3cret", u)
		assert.NotContains(t, err.Error(), "s3cret", u)
		assert.NotContains(t, err.Error(), "cret", u)
		_, err = (&Driver{}).OpenConnector(u)
		if err != nil {
			assert.NotContains(t, err.Error(), "s3cret", u)
		}
		_, err = withDatabase(u, "other")
		if err != nil {
			assert.NotContains(t, err.Error(), "s3cret", u)
		}
		if strings.Contains(u, "://") {
			_, err = databaseName(u)
			if err != nil {
				assert.NotContains(t, err.Error(), "s3cret", u)
			}
		}
	}
}

// FuzzReplicaURL: whatever ReplicaURL accepts, it returns a connection
// string pgx parses, aimed at the nearest instance on the right port, with
// everything else unchanged; it is idempotent; it never panics and its
// errors never quote a password.
func FuzzReplicaURL(f *testing.F) {
	for _, s := range []string{
		"postgres://u:p@db.internal:5432/app", "postgresql://db.internal/app?sslmode=disable",
		"postgres://u@top2.nearest.of.x.internal/d", "postgres://u@db.flycast/d", "host=db port=5432 dbname=a",
		"postgres://[fdaa::3]:5432/app", "postgres://u:%41@h/d", "::",
		"host=h\rdbname=d", "host=h database=d\\", "POSTGRES://h?dbname=0=0", "host=h application_name=a://b",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, primary bool) {
		region := "lax"
		if primary {
			region = "syd"
		}
		out, err := ReplicaURL(in, region, "syd")
		if err != nil {
			if before, err0 := pgconn.ParseConfig(in); err0 == nil && before.Password != "" && len(before.Password) > 3 {
				assert.NotContains(t, err.Error(), before.Password)
			}
			return
		}
		before, err := pgconn.ParseConfig(in)
		require.NoError(t, err, "ReplicaURL accepted %q, which pgx refuses", in)
		after, err := pgconn.ParseConfig(out)
		require.NoError(t, err, "ReplicaURL(%q) = %q does not parse", in, out)
		assert.Equal(t, before.Database, after.Database)
		assert.Equal(t, before.User, after.User)
		assert.Equal(t, before.Password, after.Password)
		assert.Equal(t, before.RuntimeParams, after.RuntimeParams)
		assert.Contains(t, []string{before.Host, nearest + before.Host, nearest + before.Host[min(len(nearest2), len(before.Host)):]}, after.Host,
			"the host is the one pgx read, prefixed")
		if !primary {
			assert.Equal(t, uint16(5433), after.Port)
			name := strings.ToLower(strings.TrimSuffix(after.Host, "."))
			assert.True(t, strings.HasPrefix(name, nearest) || strings.HasSuffix(name, ".flycast"), "host %q", after.Host)
		} else {
			assert.Equal(t, before.Port, after.Port)
		}
		again, err := ReplicaURL(out, region, "syd")
		require.NoError(t, err)
		assert.Equal(t, out, again, "idempotent")
		assertPQReadsAsPgx(t, out, after)
	})
}

// assertPQReadsAsPgx: lib/pq, when it can read s at all, reads the same
// server, database and user as pgx (cfg).
func assertPQReadsAsPgx(t *testing.T, s string, cfg *pgconn.Config) {
	t.Helper()
	pc, err := pq.NewConfig(s)
	if err != nil {
		return
	}
	if !strings.HasPrefix(cfg.Host, "/") { // their defaults differ: a socket, localhost
		assert.Equal(t, cfg.Host, pc.Host, "lib/pq's host of %q", s)
		assert.Equal(t, cfg.Port, pc.Port, "lib/pq's port of %q", s)
	}
	assert.Equal(t, cfg.Password, pc.Password, "lib/pq's password of %q", s)
	if pc.Database != "" || cfg.Database != "" {
		assert.Equal(t, cfg.Database, pc.Database, "lib/pq's database of %q", s)
	}
	if pc.User != "" {
		assert.Equal(t, cfg.User, pc.User, "lib/pq's user of %q", s)
	}
}

// FuzzWithDatabase: whatever withDatabase accepts (an explicit FLYPG_DSN
// pointed at another database) names that database to pgx and changes
// nothing else pgx reads.
func FuzzWithDatabase(f *testing.F) {
	for _, s := range []string{
		"postgres://u:p@localhost:5433/app", "postgres:///app?host=/var/run/postgresql", "postgres://a,b:5/d?dbname=x&sslmode=disable",
		"host=/tmp dbname=app", "host=h database=a dbname=b", "postgresql://[::1]/d?database=x", "user=u",
	} {
		f.Add(s, "other")
		f.Add(s, "a b/c?d&e=f'\\%")
	}
	f.Fuzz(func(t *testing.T, in, name string) {
		if name == "" || strings.IndexByte(name, 0) >= 0 {
			return
		}
		before, err := pgconn.ParseConfig(in)
		if err != nil {
			return
		}
		out, err := withDatabase(in, name)
		if err != nil {
			if before.Password != "" && len(before.Password) > 3 {
				assert.NotContains(t, err.Error(), before.Password)
			}
			return
		}
		after, err := pgconn.ParseConfig(out)
		require.NoError(t, err, "withDatabase(%q, %q) = %q does not parse", in, name, out)
		assert.Equal(t, name, after.Database, out)
		assert.Equal(t, before.User, after.User, out)
		assert.Equal(t, before.Password, after.Password, out)
		assert.Equal(t, before.Host, after.Host, out)
		assert.Equal(t, before.Port, after.Port, out)
		assert.Equal(t, before.RuntimeParams, after.RuntimeParams, out)
		assertPQReadsAsPgx(t, out, after)
	})
}

func clearEnv(t *testing.T) {
	for _, k := range []string{"FLY_REGION", "MY_REGION", "PRIMARY_REGION", "DATABASE_URL", "FLY_APP_NAME", "FLYPG_JOIN",
		"FLYPG_SECRET", "FLYPG_SECRET_PREVIOUS", "FLYPG_GOSSIP_ADDR", "FLYPG_RPC_ADDR", "FLYPG_ADVERTISE_RPC_ADDR",
		"FLYPG_NODE_NAME", "FLYPG_AWAIT_TIMEOUT", "FLYPG_RPC_TIMEOUT", "FLYPG_GOSSIP_PROFILE", "FLYPG_DSN", "FLYPG_DRIVER",
		"FLYPG_AWAIT_TIMEOUT_POLICY"} {
		t.Setenv(k, "")
	}
}

func TestConfigFromEnv(t *testing.T) {
	clearEnv(t)
	cfg, err := ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, "local", cfg.Region)
	assert.Empty(t, cfg.PrimaryRegion)
	assert.Equal(t, roleDev, cfg.role())
	assert.Equal(t, 5*time.Second, cfg.AwaitTimeout)
	assert.Equal(t, 5*time.Second, cfg.RPCTimeout)
	assert.Equal(t, "wan", cfg.GossipProfile)
	assert.Empty(t, cfg.Join)

	t.Setenv("MY_REGION", "ams")
	cfg, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, "ams", cfg.Region, "MY_REGION when FLY_REGION is unset")
	assert.Equal(t, roleDev, cfg.role(), "no PRIMARY_REGION: pass-through in any region")

	t.Setenv("FLY_REGION", "lax")
	t.Setenv("PRIMARY_REGION", "syd")
	t.Setenv("DATABASE_URL", "postgres://u@db.internal:5432/app")
	t.Setenv("FLY_APP_NAME", "myapp")
	t.Setenv("FLYPG_AWAIT_TIMEOUT", "750ms")
	t.Setenv("FLYPG_AWAIT_TIMEOUT_POLICY", "succeed")
	cfg, err = ConfigFromEnv()
	require.NoError(t, err, "no secret yet: the app may set Config.Secret itself")
	_, err = Start(t.Context(), cfg)
	assert.ErrorContains(t, err, "a cluster secret is required", "Start requires it")
	t.Setenv("FLYPG_SECRET", envSecret)
	cfg, err = ConfigFromEnv()
	require.NoError(t, err)
	assert.Equal(t, roleReplica, cfg.role())
	assert.Equal(t, "lax", cfg.Region)
	assert.Equal(t, "postgres://u@db.internal:5432/app", cfg.DatabaseURL)
	dsn, err := cfg.localDSN()
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@top1.nearest.of.db.internal:5433/app", dsn, "the local database is derived, never the primary")
	assert.Equal(t, []string{"myapp.internal"}, cfg.Join, "DNS join on Fly.io")
	assert.Equal(t, "myapp", cfg.App)
	assert.Equal(t, 750*time.Millisecond, cfg.AwaitTimeout)
	assert.Equal(t, AwaitTimeoutSucceed, cfg.AwaitTimeoutPolicy)

	t.Setenv("FLYPG_JOIN", "10.0.0.1:7946, 10.0.0.2:7946")
	t.Setenv("FLY_REGION", "syd")
	t.Setenv("FLYPG_SECRET_PREVIOUS", "a, b")
	cfg, err = ConfigFromEnv()
	assert.ErrorContains(t, err, "FLYPG_SECRET_PREVIOUS (secret 2)", "weak previous secrets are reported, all of them")
	assert.ErrorContains(t, err, "FLYPG_SECRET_PREVIOUS (secret 1)")
	assert.Equal(t, rolePrimary, cfg.role())
	assert.Equal(t, []string{"10.0.0.1:7946", "10.0.0.2:7946"}, cfg.Join)
	assert.Equal(t, [][]byte{[]byte("a"), []byte("b")}, cfg.PreviousSecrets)
	t.Setenv("FLYPG_SECRET_PREVIOUS", "")

	// Every problem at once, each of which Start refuses.
	t.Setenv("FLYPG_SECRET", "short")
	t.Setenv("FLYPG_DRIVER", "x")
	t.Setenv("FLYPG_GOSSIP_PROFILE", "x")
	_, err = ConfigFromEnv()
	assert.ErrorContains(t, err, "FLYPG_SECRET")
	assert.ErrorContains(t, err, `unknown Driver "x"`)
	assert.ErrorContains(t, err, `unknown GossipProfile "x"`)
	_, serr := Start(t.Context(), Config{})
	require.Error(t, serr)
	assert.Equal(t, err.Error(), serr.Error(), "Start fails on the same problems")
	t.Setenv("FLYPG_SECRET", envSecret)
	t.Setenv("FLYPG_DRIVER", "")
	t.Setenv("FLYPG_GOSSIP_PROFILE", "")

	t.Setenv("FLYPG_DSN", "postgres://u@10.1.2.3:5433/app")
	t.Setenv("FLY_REGION", "lax")
	cfg, err = ConfigFromEnv()
	require.NoError(t, err)
	dsn, err = cfg.localDSN()
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@10.1.2.3:5433/app", dsn, "FLYPG_DSN wins over the derived replica URL")
	other, err := cfg.localFor("postgres://u@db.internal:5432/reports")
	require.NoError(t, err)
	assert.Equal(t, "postgres://u@10.1.2.3:5433/reports", other, "another database: the explicit DSN's server, that database")
	t.Setenv("FLYPG_DSN", "")

	t.Setenv("DATABASE_URL", "postgres://u:hunter2-s3cret@10.9.9.9:5432/app")
	_, err = ConfigFromEnv()
	require.Error(t, err, "an address cannot be given the replica's name")
	assert.Contains(t, err.Error(), "FLYPG_DSN")
	assert.NotContains(t, err.Error(), "hunter2-s3cret")

	t.Setenv("FLYPG_RPC_TIMEOUT", "soon")
	_, err = ConfigFromEnv()
	assert.ErrorContains(t, err, "FLYPG_RPC_TIMEOUT")
	t.Setenv("FLYPG_RPC_TIMEOUT", "")
	t.Setenv("FLYPG_AWAIT_TIMEOUT_POLICY", "maybe")
	_, err = ConfigFromEnv()
	assert.ErrorContains(t, err, "FLYPG_AWAIT_TIMEOUT_POLICY")
}

// envSecret is a secret that passes ValidateSecret.
const envSecret = "+/RgVTwrGEZJpSMv3BVvHiq2EhDkCuhUiVIvJi9Ec4Q="

func TestSecretRequiredOutsideDevMode(t *testing.T) {
	clearEnv(t)
	base := Config{Region: "lax", PrimaryRegion: "syd", DSN: "postgres://u@127.0.0.1:1/app"}
	for _, tc := range []struct {
		name, secret, want string
	}{
		{"missing", "", "openssl rand -base64 32"},
		{"short", "s3cret", "32"},
		{"words", "correct horse battery staple and more words here", "words"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Secret = []byte(tc.secret)
			_, err := Start(t.Context(), cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.secret != "" {
				assert.NotContains(t, err.Error(), tc.secret, "the secret itself is never in an error")
			}
		})
	}
}

// Start reads the environment for the fields a hand-built Config leaves
// empty, as ConfigFromEnv does, and refuses malformed values.
func TestStartReadsTheEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("FLYPG_AWAIT_TIMEOUT", "750ms")
	t.Setenv("FLYPG_AWAIT_TIMEOUT_POLICY", "succeed")
	cfg, err := Config{DSN: "postgres://u@127.0.0.1:1/app"}.complete()
	require.NoError(t, err)
	assert.Equal(t, 750*time.Millisecond, cfg.AwaitTimeout)
	assert.Equal(t, AwaitTimeoutSucceed, cfg.AwaitTimeoutPolicy)
	cfg, err = Config{DSN: "postgres://u@127.0.0.1:1/app", AwaitTimeout: time.Second}.complete()
	require.NoError(t, err)
	assert.Equal(t, time.Second, cfg.AwaitTimeout, "a field set wins")
	t.Setenv("FLYPG_RPC_TIMEOUT", "soon")
	_, err = Start(t.Context(), Config{DSN: "postgres://u@127.0.0.1:1/app"})
	assert.ErrorContains(t, err, "FLYPG_RPC_TIMEOUT")
}

func TestSplitJoin(t *testing.T) {
	peers, dns := splitJoin([]string{"127.0.0.1:7946", "myapp.internal", "[fdaa::1]:7946"})
	assert.Equal(t, []string{"127.0.0.1:7946", "[fdaa::1]:7946"}, peers)
	assert.Equal(t, "myapp.internal", dns)
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:p@h:5433/app?sslmode=disable", "other")
	require.NoError(t, err)
	assert.Equal(t, "postgres://u:p@h:5433/other?sslmode=disable", got)
	got, err = withDatabase("host=h port=5433 dbname=app", "other db")
	require.NoError(t, err)
	cfg, err := pgconn.ParseConfig(got)
	require.NoError(t, err)
	assert.Equal(t, "other db", cfg.Database)
	assert.Equal(t, uint16(5433), cfg.Port)
}
