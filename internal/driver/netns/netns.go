// Package netns is the Linux instance driver: every instance is a network
// namespace (its "VM") with one veth on its subnet's bridge in nimbus's
// namespace, its real private IP (the CA) and a default route through the
// subnet gateway. The workload is the same `nimbus workload <image>` process
// the process driver runs, started by that driver from a thread that has
// entered the instance's namespace, so it inherits the namespace and binds
// ordinary ports on its CA. The provider IP is the CA itself.
//
// The workload is confined as the process driver confines it (its own
// mount and pid namespaces, the instance user, never root); since it binds
// ports below 1024 unprivileged, each instance namespace sets
// net.ipv4.ip_unprivileged_port_start to 0, which grants nothing outside
// that namespace.
//
// Records, logs and re-adoption are the process driver's (its state
// directory is this driver's). A namespace's name is derived from the
// state directory and the instance key, so a restarted nimbus finds the
// namespaces of the instances it re-adopts; namespaces no record explains
// (a crash between creating one and starting its workload) are removed at
// New. Stop ends the workload and keeps the namespace (a stopped VM keeps
// its NIC); Destroy removes the workload, the veth and the namespace.
package netns

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nimbus/internal/driver"
	"nimbus/internal/driver/process"
	"nimbus/internal/hostnet"
	"nimbus/internal/workload"
)

// providerPool is the process driver's address pool. Its addresses are
// never used (netns workloads bind their CA); a range of its own keeps them
// apart from a process driver running beside this one.
var providerPool = netip.MustParsePrefix("127.254.0.0/16")

// bindCA is prepended to the workload command: it makes the workload bind
// its CA (NIMBUS_PRIVATE_IP) instead of the process driver's provider
// address, then execs the workload in place (same PID).
var bindCA = []string{"/bin/sh", "-c", `NIMBUS_BIND_IP="$NIMBUS_PRIVATE_IP" exec "$0" "$@"`}

// Options configure a Driver.
type Options struct {
	// Net is nimbus's namespace; the subnets' bridges live there. Required.
	Net *hostnet.Net
	// StateDir holds the instance records and logs (required); one Driver
	// at a time may use it.
	StateDir string
	// Command is the nimbus binary and leading arguments (nil: the running
	// executable), as process.Options.Command.
	Command []string
	// Env is extra environment for every workload (tests set
	// workload.ReexecEnv).
	Env map[string]string
	// Process tunes the underlying process driver: stop and ready
	// timeouts, and the confinement of workloads (User, InstancesDir,
	// Hide: see process.Options). Its StateDir, Command, Env, Pool and
	// Logger are set here.
	Process process.Options
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger
}

// Driver runs instances in network namespaces. It is safe for concurrent
// use.
type Driver struct {
	net    *hostnet.Net
	proc   *process.Driver
	log    *slog.Logger
	prefix string // namespace name prefix of this driver's instances
}

var (
	_ driver.Driver    = (*Driver)(nil)
	_ driver.Describer = (*Driver)(nil)
	_ driver.Closer    = (*Driver)(nil)
)

// Available reports whether the driver can run here (root on Linux); the
// error wraps driver.ErrNotSupported and says what is missing.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: the netns driver needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces", driver.ErrNotSupported)
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("%w: the kernel has no network namespaces: %v", driver.ErrNotSupported, err)
	}
	return nil
}

// New opens the driver over opts.StateDir, re-adopting the instances (and
// their namespaces) an earlier nimbus left running, and removing
// namespaces of this driver that no record explains.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if opts.Net == nil || opts.StateDir == "" {
		return nil, errors.New("netns: Options.Net and Options.StateDir are required")
	}
	dir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("netns: state dir: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	command := opts.Command
	if command == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("netns: find own executable: %w", err)
		}
		command = []string{exe}
	}
	po := opts.Process
	po.StateDir = dir
	po.Command = append(append([]string(nil), bindCA...), command...)
	po.Env = opts.Env
	po.Pool = providerPool
	po.Logger = log
	pd, err := process.New(ctx, po)
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	d := &Driver{net: opts.Net, proc: pd, log: log, prefix: fmt.Sprintf("%s-%s-", opts.Net.Name(), shortHash(dir))}
	if err := d.sweep(ctx); err != nil {
		pd.Close(ctx, false)
		return nil, err
	}
	return d, nil
}

// unprivilegedPortStart is the sysctl of the lowest port an unprivileged
// process may bind.
const unprivilegedPortStart = "net/ipv4/ip_unprivileged_port_start"

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}

// NamespaceName returns the name of the namespace of instance key.
func (d *Driver) NamespaceName(key string) string { return d.prefix + shortHash(key) }

// vethName is the instance's veth end in nimbus's namespace (15 chars max).
func (d *Driver) vethName(key string) string { return "v" + shortHash(d.prefix+key) }

// sweep removes this driver's namespaces that belong to no recorded instance.
func (d *Driver) sweep(ctx context.Context) error {
	sts, err := d.proc.List(ctx)
	if err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	known := map[string]bool{}
	for _, st := range sts {
		known[d.NamespaceName(st.Key)] = true
	}
	names, err := hostnet.ListNamespaces(d.prefix)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !known[n] {
			d.log.Info("netns orphan namespace removed", "namespace", n)
			if err := hostnet.DeleteNamespace(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// Start creates (or adopts) the instance's namespace and network, then runs
// its workload inside. Idempotent per key.
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Status, error) {
	if spec.Key == "" {
		return driver.Status{}, errors.New("netns: start: empty instance key")
	}
	if _, err := workload.Resolve(spec.Image); err != nil {
		return driver.Status{}, fmt.Errorf("netns: start %s: %w", spec.Key, err)
	}
	if !spec.PrivateIP.Is4() || !spec.Subnet.Contains(spec.PrivateIP) || !spec.Subnet.Contains(spec.Gateway) {
		return driver.Status{}, fmt.Errorf("netns: start %s: private IP %s and gateway %s must be IPv4 addresses in subnet %s", spec.Key, spec.PrivateIP, spec.Gateway, spec.Subnet)
	}
	ns, err := d.ensureNetwork(ctx, spec)
	if err != nil {
		return driver.Status{}, fmt.Errorf("netns: start %s: %w", spec.Key, err)
	}
	defer ns.Close()
	var st driver.Status
	// The process driver forks on this goroutine's thread, which has
	// entered the instance's namespace: the workload is born inside it.
	err = ns.Do(func() error {
		var err error
		st, err = d.proc.Start(ctx, spec)
		return err
	})
	if err != nil {
		return driver.Status{}, fmt.Errorf("netns: %w", err)
	}
	return withCA(st), nil
}

func (d *Driver) ensureNetwork(ctx context.Context, spec driver.InstanceSpec) (*hostnet.Namespace, error) {
	if _, err := d.net.EnsureSubnet(ctx, spec.Subnet, spec.Gateway); err != nil {
		return nil, err
	}
	ns, _, err := hostnet.EnsureNamespace(d.NamespaceName(spec.Key))
	if err != nil {
		return nil, err
	}
	if err := d.plug(ctx, ns, spec); err != nil {
		ns.Close()
		return nil, err
	}
	// The workload runs unprivileged and binds ports 22 and 80 on its
	// CA: allow every port in this namespace only (the sysctl is per
	// network namespace; the host's stays as it is).
	if err := ns.Sysctl(unprivilegedPortStart, "0"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// plug makes sure the instance has its veth on the bridge, its address and
// its default route.
func (d *Driver) plug(ctx context.Context, ns *hostnet.Namespace, spec driver.InstanceSpec) error {
	nh, ih := d.net.Namespace().Handle(), ns.Handle()
	vname := d.vethName(spec.Key)
	host, herr := nh.LinkByName(vname)
	eth, eerr := ih.LinkByName("eth0")
	if herr != nil || eerr != nil {
		if eerr == nil {
			ih.LinkDel(eth)
		}
		if herr == nil {
			nh.LinkDel(host)
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vname}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns.Fd())}
		if err := nh.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s: %w", vname, err)
		}
		var err error
		if host, err = nh.LinkByName(vname); err != nil {
			return err
		}
		if eth, err = ih.LinkByName("eth0"); err != nil {
			return err
		}
	}
	if err := d.net.AttachPort(ctx, spec.Subnet, host); err != nil {
		return err
	}
	want := netip.PrefixFrom(spec.PrivateIP, spec.Subnet.Bits())
	// A re-created instance may come back with another address: drop the old.
	if addrs, err := ih.AddrList(eth, unix.AF_INET); err == nil {
		for _, a := range addrs {
			ones, _ := a.Mask.Size()
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && netip.PrefixFrom(ip, ones) != want {
				ih.AddrDel(eth, &a)
			}
		}
	}
	if err := hostnet.EnsureAddr(ih, eth, want); err != nil {
		return err
	}
	for _, l := range []string{"lo", "eth0"} {
		link, err := ih.LinkByName(l)
		if err != nil {
			return err
		}
		if err := ih.LinkSetUp(link); err != nil {
			return fmt.Errorf("up %s: %w", l, err)
		}
	}
	def := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        net.IP(spec.Gateway.AsSlice()),
	}
	if err := ih.RouteReplace(def); err != nil {
		return fmt.Errorf("default route via %s: %w", spec.Gateway, err)
	}
	return nil
}

func withCA(st driver.Status) driver.Status {
	st.ProviderIP = st.PrivateIP
	return st
}

// Stop ends the workload; the namespace stays. Unknown keys succeed.
func (d *Driver) Stop(ctx context.Context, key string) error {
	if err := d.proc.Stop(ctx, key); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return nil
}

// Destroy ends the workload and removes the instance's veth and namespace.
// Unknown keys succeed.
func (d *Driver) Destroy(ctx context.Context, key string) error {
	if err := d.proc.Destroy(ctx, key); err != nil {
		return fmt.Errorf("netns: %w", err)
	}
	return d.unplug(key)
}

func (d *Driver) unplug(key string) error {
	var errs []error
	nh := d.net.Namespace().Handle()
	if l, err := nh.LinkByName(d.vethName(key)); err == nil {
		if err := nh.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("netns: delete veth: %w", err))
		}
	}
	if err := hostnet.DeleteNamespace(d.NamespaceName(key)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Inspect reports one instance; the error wraps driver.ErrNotFound for an
// unknown key.
func (d *Driver) Inspect(ctx context.Context, key string) (driver.Status, error) {
	st, err := d.proc.Inspect(ctx, key)
	if err != nil {
		return driver.Status{}, fmt.Errorf("netns: %w", err)
	}
	return withCA(st), nil
}

// List reports every recorded instance, including re-adopted ones.
func (d *Driver) List(ctx context.Context) ([]driver.Status, error) {
	sts, err := d.proc.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	for i := range sts {
		sts[i] = withCA(sts[i])
	}
	return sts, nil
}

// Capabilities: instances own their CA and see clients' addresses.
func (d *Driver) Capabilities() driver.Capabilities {
	return driver.Capabilities{RealAddresses: true, PreservesClientIP: true}
}

// Name is "netns".
func (d *Driver) Name() string { return "netns" }

// Close detaches from the instances (stopAll false: they keep running in
// their namespaces for the next nimbus to adopt) or ends them and removes
// their namespaces (stopAll true).
func (d *Driver) Close(ctx context.Context, stopAll bool) error {
	var keys []string
	if stopAll {
		if sts, err := d.proc.List(ctx); err == nil {
			for _, st := range sts {
				keys = append(keys, st.Key)
			}
		}
	}
	err := d.proc.Close(ctx, stopAll)
	if !stopAll {
		if err != nil {
			return fmt.Errorf("netns: %w", err)
		}
		return nil
	}
	errs := []error{err}
	for _, k := range keys {
		errs = append(errs, d.unplug(k))
	}
	names, lerr := hostnet.ListNamespaces(d.prefix)
	errs = append(errs, lerr)
	for _, n := range names {
		if !strings.HasPrefix(n, d.prefix) {
			continue
		}
		errs = append(errs, hostnet.DeleteNamespace(n))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns: close: %w", err)
	}
	return nil
}
