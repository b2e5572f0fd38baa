package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/flypg/flypg"
	"github.com/flypg/flypg/internal/pgcluster"
	"github.com/flypg/flypg/internal/wan"
)

// lab is a two-region cluster on one machine: a PostgreSQL primary in
// "syd", its hot standby in "lax", a simulated WAN between the regions
// (replication and the node link both cross it), and one flypg node per
// region.
type lab struct {
	pg       *pgcluster.Cluster
	wan      *wan.WAN
	syd, lax *flypg.Node
	sydDB    *sql.DB // flypg in syd
	laxDB    *sql.DB // flypg in lax
	direct   *sql.DB // pgx from lax straight to the primary, across the WAN
	replica  *sql.DB // pgx on lax's replica
}

func startLab(ctx context.Context, rtt time.Duration) (_ *lab, err error) {
	l := &lab{}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	progress("starting PostgreSQL: primary (syd) + hot standby (lax)...")
	if l.pg, err = pgcluster.Start(ctx, pgcluster.Options{}); err != nil {
		return nil, err
	}
	l.wan = wan.New(rtt)
	primaryAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(l.pg.Primary.Port()))

	// Replication crosses the WAN, so replica lag is realistic.
	repl, err := l.wan.Proxy(ctx, "replication", primaryAddr)
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(repl)
	p, _ := strconv.Atoi(port)
	if err := l.pg.Replicas[0].SetPrimaryConninfo(ctx, host, p); err != nil {
		return nil, err
	}
	if err := l.pg.Replicas[0].WaitStreaming(ctx); err != nil {
		return nil, err
	}

	progress(fmt.Sprintf("starting flypg nodes in syd and lax, %v round trip between them...", rtt))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	secret := []byte("flypg-lab")
	sydRPC, err := freeAddr()
	if err != nil {
		return nil, err
	}
	// lax reaches syd's write link through the WAN.
	sydLink, err := l.wan.Proxy(ctx, "link", sydRPC)
	if err != nil {
		return nil, err
	}
	l.syd, err = flypg.Start(ctx, flypg.Config{
		Region: "syd", PrimaryRegion: "syd", DSN: l.pg.Primary.DSN(), NodeName: "syd-1",
		GossipAddr: "127.0.0.1:0", RPCAddr: sydRPC, AdvertiseRPCAddr: sydLink,
		Secret: secret, GossipProfile: "local", Logger: quiet,
	})
	if err != nil {
		return nil, err
	}
	l.lax, err = flypg.Start(ctx, flypg.Config{
		Region: "lax", PrimaryRegion: "syd", DSN: l.pg.Replicas[0].DSN(), NodeName: "lax-1",
		GossipAddr: "127.0.0.1:0", RPCAddr: "127.0.0.1:0", Join: []string{l.syd.GossipAddr()},
		Secret: secret, GossipProfile: "local", Logger: quiet,
	})
	if err != nil {
		return nil, err
	}
	if err := l.lax.WaitReady(ctx); err != nil {
		return nil, err
	}
	l.sydDB, l.laxDB = l.syd.OpenDB(), l.lax.OpenDB()

	directAddr, err := l.wan.Proxy(ctx, "direct", primaryAddr)
	if err != nil {
		return nil, err
	}
	if l.direct, err = sql.Open("pgx", "postgres://postgres@"+directAddr+"/postgres?sslmode=disable"); err != nil {
		return nil, err
	}
	if l.replica, err = sql.Open("pgx", l.pg.Replicas[0].DSN()); err != nil {
		return nil, err
	}
	return l, nil
}

// Close tears everything down, in reverse order.
func (l *lab) Close() {
	for _, db := range []*sql.DB{l.sydDB, l.laxDB, l.direct, l.replica} {
		if db != nil {
			db.Close()
		}
	}
	for _, n := range []*flypg.Node{l.lax, l.syd} {
		if n != nil {
			n.Close()
		}
	}
	if l.wan != nil {
		l.wan.Close()
	}
	if l.pg != nil {
		l.pg.Stop()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func progress(msg string) { fmt.Fprintln(os.Stderr, msg) }
