package flypg_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flypg/flypg"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// No password or secret ever appears in an error or a log line: every
// error and every log line of starts and connections that fail in the
// ways deployments do is checked for them.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	c := cluster(t)
	const password = "hunter2-Zq9x"
	// A role with a password, and URLs that carry it.
	_, err := sqlOpenPrimary(t).ExecContext(testCtx(t), "DROP ROLE IF EXISTS pwuser; CREATE ROLE pwuser LOGIN PASSWORD '"+password+"'")
	require.NoError(t, err)
	u, err := url.Parse(c.Primary.DSN())
	require.NoError(t, err)
	withPassword := func(host, pw string) string {
		v := *u
		v.User = url.UserPassword("pwuser", pw)
		if host != "" {
			v.Host = host
		}
		return v.String()
	}
	down := withPassword(freeAddr(t), password)
	wrong := withPassword("", password+"-wrong")
	forbidden := []string{password, url.QueryEscape(password), string(secret),
		base64.StdEncoding.EncodeToString(secret), hex.EncodeToString(secret)}

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A bad URL (unparseable port), in sql.Open and in Start.
	badPort := "postgres://pwuser:" + password + "@db.internal:port/app"
	_, err = (&flypg.Driver{}).OpenConnector(badPort)
	check(err)
	_, err = flypg.ReplicaURL(badPort, "lax", "syd")
	check(err)
	_, err = flypg.Start(ctx, flypg.Config{Region: "lax", PrimaryRegion: "syd", DatabaseURL: badPort, Secret: secret, Logger: logger})
	check(err)
	// A weak secret.
	_, err = flypg.Start(ctx, flypg.Config{Region: "lax", PrimaryRegion: "syd", DSN: down, Secret: []byte(password), Logger: logger})
	check(err)
	// A database that is down, and a wrong password, through a running node
	// in each region: connection errors and the node's logs.
	for _, region := range []string{"syd", "lax"} {
		for _, dsn := range []string{down, wrong} {
			n, err := flypg.Start(ctx, flypg.Config{Region: region, PrimaryRegion: "syd", DSN: dsn, Secret: secret,
				NodeName: fmt.Sprintf("hyg-%s-%d", region, len(errs)), GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0",
				GossipProfile: "local", Logger: logger, RPCTimeout: 300 * time.Millisecond, RoleCheckInterval: 50 * time.Millisecond})
			require.NoError(t, err, "Start does no I/O")
			db := n.OpenDB()
			check(db.PingContext(ctx))
			_, err = db.ExecContext(ctx, "INSERT INTO nowhere VALUES (1)")
			check(err)
			check(db.QueryRowContext(ctx, "SELECT 1").Scan(new(int)))
			db.Close()
			check(n.Close())
		}
	}
	require.NotEmpty(t, errs)
	for _, err := range errs {
		for _, f := range forbidden {
			assert.NotContains(t, err.Error(), f, "error %q", err)
		}
	}
	out := logs.String()
	require.NotEmpty(t, out)
	for _, f := range forbidden {
		assert.False(t, strings.Contains(out, f), "a log line contains a secret:\n%s", out)
	}
}

func sqlOpenPrimary(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", cluster(t).Primary.DSN())
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}
