package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// wanLateness measures how late the lab's WAN delivers: n round trips of
// a line through a proxy of the WAN to an echo server and back, minus the
// RTT — the proxies' release error twice, plus loopback and the echo (tens
// of microseconds). The report states it, so that its claim of precise
// delays is this run's, not the package's.
func (b *bench) wanLateness(ctx context.Context, n int) (durations, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	})
	addr, err := b.l.wan.Proxy(ctx, "echo", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	rd := bufio.NewReader(c)
	var late durations
	for i := -warmOps; i < n; i++ {
		t0 := time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return nil, err
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line != "ping\n" {
			return nil, errors.New("WAN echo: got " + fmt.Sprintf("%q", line))
		}
		if i >= 0 {
			late = append(late, time.Since(t0)-b.l.rtt)
		}
	}
	return late, nil
}
