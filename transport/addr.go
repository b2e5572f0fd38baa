package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fly.io's private network (6PN) is IPv6 only, so the defaults bind every
// address, IPv6 included, and advertise a concrete one that peers can route
// to: unspecified addresses cannot be advertised.

// flyLocal6PN resolves, on a Fly.io machine, to its private IPv6 address.
const flyLocal6PN = "fly-local-6pn"

// bindAddr returns the address to bind for a configured one ("" takes the
// IPv6 wildcard on port def).
func bindAddr(configured, def string) (addr string, wildcard bool) {
	if configured == "" {
		return net.JoinHostPort("::", def), true
	}
	return configured, false
}

// ipv4Fallback reports whether binding the IPv6 wildcard failed because the
// host has no IPv6, so the IPv4 wildcard should be tried instead.
func ipv4Fallback(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

// advertiseIP picks the IP to advertise for a listener bound to ip.
func (t *Transport) advertiseIP(bound net.IP) (net.IP, error) {
	if !bound.IsUnspecified() {
		return bound, nil
	}
	h := t.cfg.hooks
	getenv := os.Getenv
	if h.getenv != nil {
		getenv = h.getenv
	}
	if v := getenv("FLY_PRIVATE_IP"); v != "" {
		if ip := net.ParseIP(v); ip != nil {
			return ip, nil
		}
		t.log.Warn("transport: FLY_PRIVATE_IP is not an IP address; ignoring it", "value", v)
	}
	ctx, cancel := context.WithTimeout(t.ctx, time.Second)
	defer cancel()
	if ips, err := t.lookupIP(ctx, flyLocal6PN); err == nil {
		for _, ip := range ips {
			if usableIP(ip) {
				return ip, nil
			}
		}
	}
	addrs := net.InterfaceAddrs
	if h.ifaceAddr != nil {
		addrs = h.ifaceAddr
	}
	as, err := addrs()
	if err != nil {
		return nil, fmt.Errorf("transport: list interface addresses: %w", err)
	}
	wantV6 := bound.To4() == nil
	var other net.IP
	for _, a := range as {
		ipn, ok := a.(*net.IPNet)
		if !ok || !usableIP(ipn.IP) {
			continue
		}
		if (ipn.IP.To4() == nil) == wantV6 {
			return ipn.IP, nil
		}
		if other == nil {
			other = ipn.IP
		}
	}
	if other != nil {
		return other, nil
	}
	return nil, errors.New("transport: no address to advertise: bound to every interface, and no FLY_PRIVATE_IP, no fly-local-6pn and no global unicast interface address; set AdvertiseGossipAddr")
}

// usableIP is an address other machines can route to: not loopback, not
// link-local (which would need a zone), not multicast or unspecified.
func usableIP(ip net.IP) bool {
	return ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast()
}

// parseAdvertise parses AdvertiseGossipAddr: host or host:port, where host
// may be a name that resolves.
func (t *Transport) parseAdvertise(s string, boundPort int) (net.IP, int, error) {
	host, port := s, boundPort
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, 0, fmt.Errorf("transport: AdvertiseGossipAddr %q: bad port", s)
		}
		host, port = h, n
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); ip != nil {
		return ip, port, nil
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	ips, err := t.lookupIP(ctx, host)
	if err != nil || len(ips) == 0 {
		return nil, 0, fmt.Errorf("transport: AdvertiseGossipAddr %q does not resolve: %v", s, err)
	}
	return ips[0], port, nil
}

// lookupIP resolves a name to its AAAA and A records.
func (t *Transport) lookupIP(ctx context.Context, host string) ([]net.IP, error) {
	if t.cfg.hooks.lookupIP != nil {
		return t.cfg.hooks.lookupIP(ctx, host)
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, nil
}
