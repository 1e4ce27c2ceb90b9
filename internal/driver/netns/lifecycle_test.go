package netns_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"nimbus/internal/driver/drivertest"
	"nimbus/internal/driver/netns"
	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
)

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return statIno(st)
}

func TestNamespaceLifecycle(t *testing.T) {
	hostnettest.RequireRoot(t)
	env := hostnettest.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *netns.Driver {
		d, err := netns.New(ctx, options(env, dir))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	t.Cleanup(func() { d.Close(ctx, true) })
	spec := drivertest.Spec(1, drivertest.Echo)
	st, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.ProviderIP != spec.PrivateIP {
		t.Errorf("ProviderIP %s, want the CA %s", st.ProviderIP, spec.PrivateIP)
	}
	name := d.NamespaceName(spec.Key)
	t.Run("workload runs inside the instance namespace", func(t *testing.T) {
		if got, want := nsInode(t, filepath.Join("/proc", strconv.Itoa(st.PID), "ns/net")), nsInode(t, filepath.Join(hostnet.NetnsDir, name)); got != want {
			t.Errorf("workload namespace inode %d, instance namespace %d", got, want)
		}
	})
	t.Run("stop keeps the namespace", func(t *testing.T) {
		if err := d.Stop(ctx, spec.Key); err != nil {
			t.Fatal(err)
		}
		if !hostnet.NamespaceExists(name) {
			t.Error("Stop removed the namespace")
		}
		if _, err := d.Start(ctx, spec); err != nil {
			t.Fatalf("start again: %v", err)
		}
	})
	t.Run("orphan namespace is swept at restart", func(t *testing.T) {
		if err := d.Close(ctx, false); err != nil {
			t.Fatal(err)
		}
		orphan := d.NamespaceName("sub/rg/conf/never-recorded")
		ns, _, err := hostnet.EnsureNamespace(orphan)
		if err != nil {
			t.Fatal(err)
		}
		ns.Close()
		t.Cleanup(func() { hostnet.DeleteNamespace(orphan) })
		d = open()
		if hostnet.NamespaceExists(orphan) {
			t.Error("orphan namespace survived New")
		}
		if !hostnet.NamespaceExists(name) {
			t.Error("the adopted instance lost its namespace")
		}
	})
	t.Run("destroy removes veth and namespace", func(t *testing.T) {
		if err := d.Destroy(ctx, spec.Key); err != nil {
			t.Fatal(err)
		}
		if hostnet.NamespaceExists(name) {
			t.Error("namespace left after Destroy")
		}
		links, err := env.Net.Namespace().Handle().LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Type() == "veth" && l.Attrs().Name != env.Net.UplinkName() {
				t.Errorf("veth %s left in nimbus's namespace", l.Attrs().Name)
			}
		}
		if err := d.Destroy(ctx, spec.Key); err != nil {
			t.Errorf("second Destroy: %v", err)
		}
	})
}

func TestRestartWithNewAddress(t *testing.T) {
	hostnettest.RequireRoot(t)
	env := hostnettest.New(t)
	ctx := context.Background()
	d, err := netns.New(ctx, options(env, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(ctx, true) })
	spec := drivertest.Spec(2, drivertest.Echo)
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, spec.Key); err != nil {
		t.Fatal(err)
	}
	spec.PrivateIP = spec.PrivateIP.Next()
	st, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.ProviderIP != spec.PrivateIP {
		t.Fatalf("ProviderIP %s, want the new CA %s", st.ProviderIP, spec.PrivateIP)
	}
	ns, err := hostnet.OpenNamespace(d.NamespaceName(spec.Key))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	eth, err := ns.Handle().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := ns.Handle().AddrList(eth, unix.AF_INET)
	if len(addrs) != 1 || addrs[0].IP.String() != spec.PrivateIP.String() {
		t.Errorf("eth0 addresses %v, want only %s", addrs, spec.PrivateIP)
	}
	c, err := env.Net.DialContext(ctx, "tcp", netip.AddrPortFrom(spec.PrivateIP, 80).String())
	if err != nil {
		t.Fatalf("new address unreachable: %v", err)
	}
	c.Close()
}
