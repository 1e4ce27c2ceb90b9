// Command udpload measures UDP datagrams per second against an echo server:
// -workers sockets each keep -window datagrams in flight for -d, and the
// replies received per second are printed as one number.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("target", "127.77.0.2:18081", "echo server address")
	workers := flag.Int("workers", 4, "sockets")
	window := flag.Int("window", 16, "datagrams in flight per socket")
	size := flag.Int("size", 64, "payload bytes")
	dur := flag.Duration("d", 5*time.Second, "duration (at most 5 minutes)")
	flag.Parse()
	if *dur > 5*time.Minute {
		*dur = 5 * time.Minute
	}
	n, err := run(*target, *workers, *window, *size, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpload:", err)
		os.Exit(1)
	}
	fmt.Printf("%.0f\n", n)
}

func run(target string, workers, window, size int, dur time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var got atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for range workers {
		c, err := net.Dial("udp", target)
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := worker(ctx, c.(*net.UDPConn), window, size, &got); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(got.Load()) / elapsed.Seconds(), nil
}

// worker keeps window datagrams in flight: one more for every reply, the
// whole window again after 50 ms of silence (losses).
func worker(ctx context.Context, c *net.UDPConn, window, size int, got *atomic.Int64) error {
	msg := make([]byte, size)
	buf := make([]byte, 65535)
	send := func(k int) error {
		for range k {
			if _, err := c.Write(msg); err != nil {
				return err
			}
		}
		return nil
	}
	if err := send(window); err != nil {
		return err
	}
	deadline, _ := ctx.Deadline()
	for ctx.Err() == nil {
		rd := time.Now().Add(50 * time.Millisecond)
		if rd.After(deadline) {
			rd = deadline
		}
		_ = c.SetReadDeadline(rd)
		_, err := c.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
			got.Add(1)
			if err := send(1); err != nil {
				return err
			}
		case errors.As(err, &ne) && ne.Timeout():
			if err := send(window); err != nil {
				return err
			}
		default:
			// ICMP unreachable while the target starts: retry within bounds.
			if err := send(1); err != nil {
				return err
			}
		}
	}
	return nil
}
