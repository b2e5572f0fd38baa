package wan_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/flypg/flypg/internal/wan"
)

// Put a region-to-region round trip of 40 ms in front of a server (here an
// echo server; in the tests and the lab, the primary's port or a node's
// write link) and dial the proxy instead.
func ExampleWAN_Proxy() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()

	w := wan.New(40 * time.Millisecond)
	defer w.Close()
	addr, err := w.Proxy(context.Background(), "echo", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	start := time.Now()
	fmt.Fprintln(c, "ping")
	line, _ := bufio.NewReader(c).ReadString('\n')
	took := time.Since(start)
	fmt.Printf("%q after at least the RTT: %v\n", line, took >= w.RTT())

	st, _ := w.Stats("echo")
	fmt.Printf("%d connection, %d request, %d bytes each way\n", st.Conns, st.Requests, st.BytesUp)
	// Output:
	// "ping\n" after at least the RTT: true
	// 1 connection, 1 request, 5 bytes each way
}
