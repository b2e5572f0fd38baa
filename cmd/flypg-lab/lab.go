package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// newSecret returns a fresh cluster secret: 32 random bytes in base64, what
// `openssl rand -base64 32` prints. The lab makes one per run; flypg refuses
// short or guessable ones.
func newSecret() (string, error) {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("generate a cluster secret: %w", err)
		}
		// flypg's check refuses random bytes that look patterned (a run
		// of one byte, few distinct values); 32 random bytes fail it
		// with negligible probability, and then we draw again.
		if s := base64.StdEncoding.EncodeToString(b); validSecret(s) == nil {
			return s, nil
		}
	}
}

// labOptions are what the commands let the user choose about the lab.
type labOptions struct {
	rtt time.Duration
	// amsDelay is ams's replica's recovery_min_apply_delay: how far behind
	// the primary it replays, so that a stale read there is visible.
	amsDelay time.Duration
}

// lab is a three-region cluster on one machine: a PostgreSQL primary in
// "syd", its hot standbys in "lax" and "ams", and a simulated WAN between
// the regions that the WAL streams cross, so replica lag is realistic; ams's
// standby also replays amsDelay late. The flypg nodes come on top: in
// process (startNodes, for the benchmarks and the soak, which measure
// flypg's client without HTTP in the way) or as processes of the example
// app (startApps, for demo and up).
type lab struct {
	labOptions
	secret     string
	pg         *pgcluster.Cluster
	wan        *wan.WAN
	direct     *sql.DB // pgx from lax straight to the primary, across the WAN
	replica    *sql.DB // pgx on lax's replica
	amsReplica *sql.DB // pgx on ams's replica
	primary    *sql.DB // pgx on the primary, from syd: no WAN
	directAddr string  // the WAN proxy in front of the primary, for direct connections

	// In-process nodes (startNodes). observer, if set before, is the
	// replica-region nodes' Observer.
	observer            flypg.Observer
	syd, lax, ams       *flypg.Node
	sydDB, laxDB, amsDB *sql.DB

	// App processes (startApps).
	apps []*app
}

// Names of the lab's WAN proxies, for wan.Stats.
const (
	proxyDirect = "direct" // lax → primary, for the direct baselines
	proxyLink   = "link"   // replica regions → syd's write link (in-process nodes)
)

func (l *lab) laxPG() *pgcluster.Server { return l.pg.Replicas[0] }
func (l *lab) amsPG() *pgcluster.Server { return l.pg.Replicas[1] }

func startLab(ctx context.Context, o labOptions) (_ *lab, err error) {
	l := &lab{labOptions: o}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	if l.secret, err = newSecret(); err != nil {
		return nil, err
	}
	progress("starting PostgreSQL: primary (syd) + hot standbys (lax, ams)...")
	// main handles ^C, so the apps get a graceful stop.
	if l.pg, err = pgcluster.Start(ctx, pgcluster.Options{Replicas: 2, KeepSignals: true}); err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	if o.amsDelay > 0 {
		// Sighup-level: a reload applies it, on ams's standby only.
		set := fmt.Sprintf("ALTER SYSTEM SET recovery_min_apply_delay = '%dms'", o.amsDelay.Milliseconds())
		if err := l.amsPG().Exec(ctx, set); err != nil {
			return nil, fmt.Errorf("delay ams's replay: %w", err)
		}
	}
	l.wan = wan.New(o.rtt)

	// Replication crosses the WAN, to each region on its own proxy.
	for _, r := range []struct {
		name string
		srv  *pgcluster.Server
	}{{"replication-lax", l.laxPG()}, {"replication-ams", l.amsPG()}} {
		addr, err := l.wan.Proxy(ctx, r.name, l.pg.Primary.Addr())
		if err != nil {
			return nil, fmt.Errorf("WAN proxy for replication: %w", err)
		}
		// ReplicateFrom reloads the configuration: ams's delay applies too.
		if err := r.srv.ReplicateFrom(ctx, addr); err != nil {
			return nil, fmt.Errorf("replicate through the WAN: %w", err)
		}
	}

	if l.directAddr, err = l.wan.Proxy(ctx, proxyDirect, l.pg.Primary.Addr()); err != nil {
		return nil, fmt.Errorf("WAN proxy for direct connections: %w", err)
	}
	for _, db := range []struct {
		dst **sql.DB
		dsn string
	}{
		{&l.direct, "postgres://postgres@" + l.directAddr + "/postgres?sslmode=disable"},
		{&l.replica, l.laxPG().DSN()},
		{&l.amsReplica, l.amsPG().DSN()},
		{&l.primary, l.pg.Primary.DSN()},
	} {
		if *db.dst, err = openBaseline(db.dsn); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// openBaseline opens a plain pgx pool for a baseline, as strong as pgx
// allows: warm at every concurrency the bench uses (a baseline that
// reconnects across the WAN would look worse than it is), and without
// pgx's liveness ping of a connection idle for more than a second, a round
// trip of its own that flypg's forwarded statements never pay across the
// WAN.
func openBaseline(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", dsn, err)
	}
	db := stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(func(context.Context, stdlib.ShouldPingParams) bool { return false }))
	db.SetMaxIdleConns(128)
	return db, nil
}

// startNodes starts a flypg node per region in this process. syd's write
// link is advertised through a WAN proxy, so the other regions' forwarded
// work crosses the WAN.
func (l *lab) startNodes(ctx context.Context) error {
	progress(fmt.Sprintf("starting flypg nodes in syd, lax and ams, %v round trip between syd and each...", l.rtt))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sydRPC, err := freeAddr()
	if err != nil {
		return err
	}
	sydLink, err := l.wan.Proxy(ctx, proxyLink, sydRPC)
	if err != nil {
		return fmt.Errorf("WAN proxy for the write link: %w", err)
	}
	primaryURL := l.pg.Primary.DSN()
	base := flypg.Config{
		PrimaryRegion: "syd", DatabaseURL: primaryURL, GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0",
		Secret: []byte(l.secret), GossipProfile: "local", Logger: quiet,
	}
	cfg := base
	cfg.Region, cfg.NodeName, cfg.RPCAddr, cfg.AdvertiseRPCAddr = "syd", "syd-1", sydRPC, sydLink
	if l.syd, err = flypg.Start(ctx, cfg); err != nil {
		return fmt.Errorf("start syd node: %w", err)
	}
	for _, r := range []struct {
		node  **flypg.Node
		name  string
		local *pgcluster.Server
	}{{&l.lax, "lax", l.laxPG()}, {&l.ams, "ams", l.amsPG()}} {
		cfg := base
		cfg.Region, cfg.NodeName, cfg.DSN, cfg.Join = r.name, r.name+"-1", r.local.DSN(), []string{l.syd.GossipAddr()}
		cfg.Observer = l.observer
		if *r.node, err = flypg.Start(ctx, cfg); err != nil {
			return fmt.Errorf("start %s node: %w", r.name, err)
		}
		if err := (*r.node).WaitReady(ctx); err != nil {
			return fmt.Errorf("%s node: %w", r.name, err)
		}
	}
	l.sydDB, l.laxDB, l.amsDB = l.syd.OpenDB(), l.lax.OpenDB(), l.ams.OpenDB()
	for _, db := range []*sql.DB{l.sydDB, l.laxDB, l.amsDB} {
		db.SetMaxIdleConns(128)
	}
	return nil
}

// Close tears everything down, in reverse order, and reports what failed.
func (l *lab) Close() error {
	var errs []error
	if len(l.apps) > 0 {
		progress("stopping the app nodes...")
	}
	for i := len(l.apps) - 1; i >= 0; i-- {
		errs = append(errs, l.apps[i].stop())
	}
	for _, db := range []*sql.DB{l.sydDB, l.laxDB, l.amsDB, l.direct, l.replica, l.amsReplica, l.primary} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	for _, n := range []*flypg.Node{l.ams, l.lax, l.syd} {
		if n != nil {
			// A leave broadcast that times out on a loaded machine does not
			// matter: the cluster goes away with us.
			_ = n.Close()
		}
	}
	if l.pg != nil {
		progress("stopping PostgreSQL...")
		errs = append(errs, l.pg.Stop())
	}
	// After the servers: they close their replication connections through
	// the proxies first.
	if l.wan != nil {
		errs = append(errs, l.wan.Close())
	}
	return errors.Join(errs...)
}

// freeAddr returns a loopback address that was free a moment ago. Another
// process may take it before we bind it; on one quiet machine that is rare
// enough for a lab.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func progress(msg string) { fmt.Fprintln(os.Stderr, msg) }

// startLabWithApps starts the lab with the example app running in each
// region as its own process (demo and up). The app is built first, so that
// outside the repository this fails before anything starts; the binary is
// removed as soon as the apps run, so nothing is left however the lab ends.
func startLabWithApps(ctx context.Context, o labOptions, logs io.Writer) (*lab, error) {
	bin, removeBin, err := appBinary(ctx)
	if err != nil {
		return nil, err
	}
	defer removeBin()
	l, err := startLab(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := l.startApps(ctx, bin, logs); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}
