// Command lbproxy runs nimbus's userspace data-plane engine (dataplane/proxy)
// with a configuration given on the command line, for benchmarks: one rule
// per -rule flag, all on one frontend, until SIGINT or SIGTERM.
//
//	lbproxy -frontend 127.77.0.1 -rule tcp:18080=127.77.0.2:18080 -rule udp:18081=127.77.0.2:18081
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/proxy"
)

type rules []string

func (r *rules) String() string     { return strings.Join(*r, ",") }
func (r *rules) Set(s string) error { *r = append(*r, s); return nil }

func main() {
	var rs rules
	frontend := flag.String("frontend", "127.77.0.1", "frontend (listen) address")
	idle := flag.Duration("idle", dataplane.DefaultIdleTimeout, "idle timeout")
	flag.Var(&rs, "rule", "proto:port=backendIP:port[,backendIP:port...] (repeatable)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *frontend, *idle, rs); err != nil {
		log.Error("lbproxy", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, frontend string, idle time.Duration, rs rules) error {
	fe, err := netip.ParseAddr(frontend)
	if err != nil {
		return fmt.Errorf("frontend: %w", err)
	}
	var cfg dataplane.Config
	for i, s := range rs {
		r, err := parseRule(i, fe, s)
		if err != nil {
			return err
		}
		r.IdleTimeout = idle
		cfg.Rules = append(cfg.Rules, r)
	}
	e := proxy.New(proxy.Options{})
	defer e.Close()
	if err := e.Apply(ctx, cfg); err != nil {
		return err
	}
	fmt.Println("ready")
	<-ctx.Done()
	return nil
}

func parseRule(i int, fe netip.Addr, s string) (dataplane.Rule, error) {
	lhs, rhs, ok := strings.Cut(s, "=")
	proto, port, ok2 := strings.Cut(lhs, ":")
	if !ok || !ok2 {
		return dataplane.Rule{}, fmt.Errorf("rule %q: want proto:port=ip:port", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return dataplane.Rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	r := dataplane.Rule{ID: fmt.Sprintf("/rules/r%d", i), Frontend: dataplane.Frontend{ID: "/fe", IP: fe},
		FrontendPort: uint16(p), Distribution: dataplane.Default}
	switch proto {
	case "tcp":
		r.Protocol = dataplane.TCP
	case "udp":
		r.Protocol = dataplane.UDP
	default:
		return dataplane.Rule{}, fmt.Errorf("rule %q: protocol %q", s, proto)
	}
	for j, b := range strings.Split(rhs, ",") {
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			return dataplane.Rule{}, fmt.Errorf("rule %q: %w", s, err)
		}
		r.BackendPort = ap.Port()
		r.Backends = append(r.Backends, dataplane.Backend{ID: fmt.Sprintf("/b%d", j), IP: ap.Addr(), DialIP: ap.Addr()})
	}
	return r, nil
}
