package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// secret is the lab's cluster secret: everything runs on loopback.
const secret = "flypg-lab"

// lab is a two-region cluster on one machine: a PostgreSQL primary in
// "syd", its hot standby in "lax", and a simulated WAN between the regions
// that the WAL stream crosses, so replica lag is realistic. The flypg nodes
// come on top: in process (startNodes, for the benchmarks, which measure
// flypg's client without HTTP in the way) or as processes of the example app
// (startApps, for demo and up).
type lab struct {
	rtt     time.Duration
	pg      *pgcluster.Cluster
	wan     *wan.WAN
	direct  *sql.DB // pgx from lax straight to the primary, across the WAN
	replica *sql.DB // pgx on lax's replica
	primary *sql.DB // pgx on the primary, from syd: no WAN

	// In-process nodes (startNodes).
	syd, lax     *flypg.Node
	sydDB, laxDB *sql.DB

	// App processes (startApps).
	apps []*app
}

func startLab(ctx context.Context, rtt time.Duration) (_ *lab, err error) {
	l := &lab{rtt: rtt}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	progress("starting PostgreSQL: primary (syd) + hot standby (lax)...")
	if l.pg, err = pgcluster.Start(ctx, pgcluster.Options{KeepSignals: true}); err != nil { // main handles ^C, so the apps get a graceful stop
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	l.wan = wan.New(rtt)

	// Replication crosses the WAN.
	repl, err := l.wan.Proxy(ctx, "replication", l.primaryAddr())
	if err != nil {
		return nil, fmt.Errorf("WAN proxy for replication: %w", err)
	}
	if err := l.pg.Replicas[0].ReplicateFrom(ctx, repl); err != nil {
		return nil, fmt.Errorf("replicate through the WAN: %w", err)
	}

	directAddr, err := l.wan.Proxy(ctx, "direct", l.primaryAddr())
	if err != nil {
		return nil, fmt.Errorf("WAN proxy for direct connections: %w", err)
	}
	for _, db := range []struct {
		dst **sql.DB
		dsn string
	}{
		{&l.direct, "postgres://postgres@" + directAddr + "/postgres?sslmode=disable"},
		{&l.replica, l.pg.Replicas[0].DSN()},
		{&l.primary, l.pg.Primary.DSN()},
	} {
		if *db.dst, err = sql.Open("pgx", db.dsn); err != nil {
			return nil, fmt.Errorf("open %s: %w", db.dsn, err)
		}
		// Keep pools warm at every concurrency the bench uses: a baseline
		// that reconnects across the WAN would look worse than it is.
		(*db.dst).SetMaxIdleConns(128)
	}
	return l, nil
}

func (l *lab) primaryAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.pg.Primary.Port()))
}

// startNodes starts a flypg node per region in this process. syd's write
// link is advertised through a WAN proxy, so lax's forwarded work crosses
// the WAN.
func (l *lab) startNodes(ctx context.Context) error {
	progress(fmt.Sprintf("starting flypg nodes in syd and lax, %v round trip between them...", l.rtt))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sydRPC, err := freeAddr()
	if err != nil {
		return err
	}
	sydLink, err := l.wan.Proxy(ctx, "link", sydRPC)
	if err != nil {
		return fmt.Errorf("WAN proxy for the write link: %w", err)
	}
	l.syd, err = flypg.Start(ctx, flypg.Config{
		Region: "syd", PrimaryRegion: "syd", DSN: l.pg.Primary.DSN(), NodeName: "syd-1",
		GossipAddr: "127.0.0.1:0", RPCAddr: sydRPC, AdvertiseRPCAddr: sydLink,
		Secret: []byte(secret), GossipProfile: "local", Logger: quiet,
	})
	if err != nil {
		return fmt.Errorf("start syd node: %w", err)
	}
	l.lax, err = flypg.Start(ctx, flypg.Config{
		Region: "lax", PrimaryRegion: "syd", DSN: l.pg.Replicas[0].DSN(), NodeName: "lax-1",
		GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: []string{l.syd.GossipAddr()},
		Secret: []byte(secret), GossipProfile: "local", Logger: quiet,
	})
	if err != nil {
		return fmt.Errorf("start lax node: %w", err)
	}
	if err := l.lax.WaitReady(ctx); err != nil {
		return fmt.Errorf("lax node: %w", err)
	}
	l.sydDB, l.laxDB = l.syd.OpenDB(), l.lax.OpenDB()
	l.laxDB.SetMaxIdleConns(128)
	l.sydDB.SetMaxIdleConns(128)
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
	for _, db := range []*sql.DB{l.sydDB, l.laxDB, l.direct, l.replica, l.primary} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	for _, n := range []*flypg.Node{l.lax, l.syd} {
		if n != nil {
			// A leave broadcast that times out on a loaded machine does not
			// matter: the cluster goes away with us.
			_ = n.Close()
		}
	}
	if l.wan != nil {
		errs = append(errs, l.wan.Close())
	}
	if l.pg != nil {
		progress("stopping PostgreSQL...")
		errs = append(errs, l.pg.Stop())
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
// removed as soon as both apps run, so nothing is left however the lab ends.
func startLabWithApps(ctx context.Context, rtt time.Duration, logs io.Writer) (*lab, error) {
	bin, removeBin, err := appBinary(ctx)
	if err != nil {
		return nil, err
	}
	defer removeBin()
	l, err := startLab(ctx, rtt)
	if err != nil {
		return nil, err
	}
	if err := l.startApps(ctx, bin, logs); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}
