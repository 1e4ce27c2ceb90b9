// Package hostnettest gives tests throwaway network namespaces and a
// complete hostnet.Net whose "host" is a namespace the test created, so no
// test touches the real host. Every name is unique and removed in
// t.Cleanup, also when the test fails.
package hostnettest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"testing"

	"nimbus/internal/hostnet"
)

// RequireRoot skips the test unless it runs as root (namespaces need
// CAP_SYS_ADMIN and CAP_NET_ADMIN).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
}

// UniqueName returns prefix plus 6 random hex characters.
func UniqueName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Namespace creates a fresh named namespace removed at cleanup.
func Namespace(t testing.TB, prefix string) *hostnet.Namespace {
	t.Helper()
	RequireRoot(t)
	name := UniqueName(prefix)
	ns, _, err := hostnet.EnsureNamespace(name)
	if err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := hostnet.DeleteNamespace(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return ns
}

// Env is a hostnet.Net plus the namespace that plays the host (and the
// internet): clients and "internet" servers run there.
type Env struct {
	Net  *hostnet.Net
	Host *hostnet.Namespace
	Opts hostnet.Options
}

// Uplink is the uplink /30 every test Env uses (inside 198.18.0.0/15).
var Uplink = netip.MustParsePrefix("198.18.255.252/30")

// New builds a Net named "nbt<random>" whose host end lives in a fresh
// namespace "nbh<random>", routing publicRanges into it. Both are torn
// down at cleanup.
func New(t testing.TB, publicRanges ...netip.Prefix) *Env {
	t.Helper()
	host := Namespace(t, "nbh")
	opts := hostnet.Options{
		Name:          UniqueName("nbt"),
		Uplink:        Uplink,
		PublicRanges:  publicRanges,
		HostNamespace: host.Name(),
	}
	n, err := hostnet.Setup(context.Background(), opts)
	if err != nil {
		hostnet.Teardown(context.Background(), opts)
		t.Fatalf("hostnet setup: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(context.Background(), true); err != nil {
			t.Errorf("hostnet close: %v", err)
		}
		// Idempotent on purpose: also removes leftovers of a failed Close.
		if err := hostnet.Teardown(context.Background(), opts); err != nil {
			t.Errorf("hostnet teardown: %v", err)
		}
	})
	return &Env{Net: n, Host: host, Opts: opts}
}
