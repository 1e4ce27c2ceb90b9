// Command backend is the benchmark's backend: a minimal HTTP server
// ("ok\n" on every path) and a UDP echo server, until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	httpAddr := flag.String("http", "127.77.0.2:18080", "HTTP listen address")
	udpAddr := flag.String("udp", "127.77.0.2:18081", "UDP echo address")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *httpAddr, *udpAddr); err != nil {
		log.Error("backend", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, httpAddr, udpAddr string) error {
	pc, err := net.ListenPacket("udp", udpAddr)
	if err != nil {
		return fmt.Errorf("udp: %w", err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	body := []byte("ok\n")
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(body)
	})}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	fmt.Println("ready")
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}
