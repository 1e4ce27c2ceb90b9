// Package hostnet builds and tears down nimbus's own network namespace: a
// bridge per subnet holding the subnet gateway, forwarding and relaxed
// reverse-path filtering, and the single veth pair that connects it to the
// host so the host can reach public frontends. The host's namespace gains
// that one veth and a route per public range, nothing else.
//
// Subnets are routed, not switched: bridge ports are isolated and the
// bridge answers every ARP request itself (proxy ARP), so all traffic
// between instances passes through nimbus's namespace and its conntrack.
// That is what lets an internal frontend keep the client's address even when
// the client and the backend share a subnet.
//
// Limits: IPv4 only; one namespace routes every subnet, so two virtual
// networks with the same prefix would share a bridge (conntrack zones or a
// namespace per virtual network would be needed).
//
// Trap: /proc/self/ns/net (and /proc/net) follow the process's main thread,
// which the Go runtime may leave wedged inside another namespace after a
// locked goroutine exits on it; OpenCurrentNamespace reads a live thread.
package hostnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultName is the default name of nimbus's namespace.
const DefaultName = "nimbus0"

// DefaultUplink is the default /30 of the host veth pair: the host end takes
// the first usable address, nimbus's end the second.
var DefaultUplink = netip.MustParsePrefix("198.19.255.252/30")

// Options configure Setup. The zero value is usable: namespace "nimbus0",
// uplink DefaultUplink, no public ranges, host end in the caller's namespace.
type Options struct {
	// Name of nimbus's namespace (and prefix of the veth names, at most 10
	// characters). Default DefaultName.
	Name string
	// Uplink is the /30 used by the veth pair between the host and nimbus's
	// namespace. Default DefaultUplink.
	Uplink netip.Prefix
	// PublicRanges are routed from the host into nimbus's namespace (the
	// public frontend pool). Nimbus's namespace routes everything else back
	// to the host (default route).
	PublicRanges []netip.Prefix
	// HostNamespace names the namespace that plays the host. Empty means the
	// namespace nimbus runs in (the root namespace in production). Tests set
	// a namespace they created, so the real host is never touched.
	HostNamespace string
	// Logger receives setup and cleanup events; nil discards them.
	Logger *slog.Logger
}

// Net is nimbus's namespace with its bridges and host link. It is safe for
// concurrent use.
type Net struct {
	opts   Options
	log    *slog.Logger
	ns     *Namespace
	host   *os.File
	hostH  *netlink.Handle
	hostIP netip.Addr
	nsIP   netip.Addr

	mu      sync.Mutex
	subnets map[netip.Prefix]netip.Addr
}

// HostLinkName is the name of the host end of the veth pair.
func HostLinkName(name string) string { return name + "-host" }

// UplinkLinkName is the name of nimbus's end of the veth pair.
func UplinkLinkName(name string) string { return name + "-lb" }

// BridgeName is the name of a subnet's bridge inside nimbus's namespace:
// "br" + the network address in hex + the prefix length, unique per subnet.
func BridgeName(subnet netip.Prefix) string {
	a := subnet.Masked().Addr().As4()
	return fmt.Sprintf("br%02x%02x%02x%02x-%d", a[0], a[1], a[2], a[3], subnet.Bits())
}

func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if len(o.Name) > 10 {
		return o, fmt.Errorf("hostnet: name %q longer than 10 characters (veth names are limited to 15)", o.Name)
	}
	if !o.Uplink.IsValid() {
		o.Uplink = DefaultUplink
	}
	if !o.Uplink.Addr().Is4() || o.Uplink.Bits() > 30 {
		return o, fmt.Errorf("hostnet: uplink %s must be an IPv4 prefix of at most /30", o.Uplink)
	}
	for _, r := range o.PublicRanges {
		if !r.Addr().Is4() {
			return o, fmt.Errorf("hostnet: public range %s is not IPv4", r)
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Setup creates nimbus's namespace, or adopts the one a previous nimbus
// process left behind, and brings it to the wanted state: sysctls, the host
// veth pair with its addresses and routes. It is idempotent.
func Setup(ctx context.Context, opts Options) (*Net, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := &Net{opts: opts, log: opts.Logger, subnets: map[netip.Prefix]netip.Addr{}}
	n.hostIP = opts.Uplink.Masked().Addr().Next()
	n.nsIP = n.hostIP.Next()

	ns, created, err := EnsureNamespace(opts.Name)
	if err != nil {
		return nil, err
	}
	n.ns = ns
	n.log.Info("hostnet namespace", "name", opts.Name, "created", created)

	if opts.HostNamespace == "" {
		n.host, err = OpenCurrentNamespace()
	} else {
		n.host, err = os.Open(NetnsDir + "/" + opts.HostNamespace)
	}
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("hostnet: open host namespace: %w", err)
	}
	n.hostH, err = netlink.NewHandleAt(netns.NsHandle(int(n.host.Fd())))
	if err != nil {
		n.host.Close()
		ns.Close()
		return nil, fmt.Errorf("hostnet: netlink handle in host namespace: %w", err)
	}
	if err := n.configure(); err != nil {
		n.release()
		if created {
			// Leave nothing behind of a namespace this call made.
			Teardown(ctx, opts)
		}
		return nil, err
	}
	return n, nil
}

func (n *Net) configure() error {
	sysctls := [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/all/rp_filter", "0"},
		{"net/ipv4/conf/default/rp_filter", "0"},
		{"net/ipv4/conf/all/send_redirects", "0"},
		{"net/ipv4/conf/default/send_redirects", "0"},
	}
	err := n.ns.Do(func() error {
		for _, kv := range sysctls {
			if err := writeSysctl(kv[0], kv[1]); err != nil {
				return err
			}
		}
		// br_netfilter may be absent (module not loaded); then bridged
		// traffic cannot reach netfilter anyway.
		for _, k := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
			p := "net/bridge/" + k
			if _, err := os.Stat("/proc/sys/" + p); err == nil {
				if err := writeSysctl(p, "0"); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return n.ensureUplink()
}

func (n *Net) ensureUplink() error {
	hostName, lbName := HostLinkName(n.opts.Name), UplinkLinkName(n.opts.Name)
	hostLink, herr := n.hostH.LinkByName(hostName)
	lbLink, lerr := n.ns.h.LinkByName(lbName)
	if herr == nil && lerr != nil || herr != nil && lerr == nil {
		// Half a pair (cannot normally happen: veth ends die together);
		// start over.
		if herr == nil {
			n.hostH.LinkDel(hostLink)
		}
		if lerr == nil {
			n.ns.h.LinkDel(lbLink)
		}
		herr = errors.New("recreate")
	}
	if herr != nil {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: hostName},
			PeerName:      lbName,
			PeerNamespace: netlink.NsFd(n.ns.Fd()),
		}
		if err := n.hostH.LinkAdd(veth); err != nil {
			return fmt.Errorf("hostnet: add veth %s: %w", hostName, err)
		}
		var err error
		if hostLink, err = n.hostH.LinkByName(hostName); err != nil {
			return fmt.Errorf("hostnet: %w", err)
		}
		if lbLink, err = n.ns.h.LinkByName(lbName); err != nil {
			return fmt.Errorf("hostnet: %w", err)
		}
		n.log.Info("hostnet uplink created", "host", hostName, "peer", lbName)
	}
	bits := n.opts.Uplink.Bits()
	if err := ensureAddr(n.hostH, hostLink, netip.PrefixFrom(n.hostIP, bits)); err != nil {
		return err
	}
	if err := ensureAddr(n.ns.h, lbLink, netip.PrefixFrom(n.nsIP, bits)); err != nil {
		return err
	}
	if err := n.hostH.LinkSetUp(hostLink); err != nil {
		return fmt.Errorf("hostnet: up %s: %w", hostName, err)
	}
	if err := n.ns.h.LinkSetUp(lbLink); err != nil {
		return fmt.Errorf("hostnet: up %s: %w", lbName, err)
	}
	if err := n.ns.Sysctl("net/ipv4/conf/"+lbName+"/rp_filter", "0"); err != nil {
		return err
	}
	def := &netlink.Route{
		LinkIndex: lbLink.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        net.IP(n.hostIP.AsSlice()),
	}
	if err := n.ns.h.RouteReplace(def); err != nil {
		return fmt.Errorf("hostnet: default route in %s: %w", n.opts.Name, err)
	}
	for _, r := range n.opts.PublicRanges {
		rt := &netlink.Route{
			LinkIndex: hostLink.Attrs().Index,
			Dst:       prefixNet(r),
			Gw:        net.IP(n.nsIP.AsSlice()),
		}
		// Never take over a route the host already has for the range.
		existing, err := n.hostH.RouteListFiltered(unix.AF_INET, &netlink.Route{Dst: prefixNet(r)}, netlink.RT_FILTER_DST)
		if err != nil {
			return fmt.Errorf("hostnet: list routes for %s: %w", r, err)
		}
		for _, e := range existing {
			if e.LinkIndex != hostLink.Attrs().Index {
				return fmt.Errorf("hostnet: the host already routes %s (interface index %d); choose a public range the host does not use", r, e.LinkIndex)
			}
		}
		if err := n.hostH.RouteReplace(rt); err != nil {
			return fmt.Errorf("hostnet: route %s via %s: %w", r, hostName, err)
		}
	}
	return nil
}

// EnsureAddr adds the interface address p (host bits kept) to link unless
// it is already there.
func EnsureAddr(h *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	return ensureAddr(h, link, p)
}

func ensureAddr(h *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	addrs, err := h.AddrList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("hostnet: list addresses of %s: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP.To4()); ok && got == p.Addr() {
			return nil
		}
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: prefixIPNet(p)}); err != nil {
		return fmt.Errorf("hostnet: add %s to %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// prefixIPNet keeps the host bits (an interface address).
func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixNet is the masked network (a route destination).
func prefixNet(p netip.Prefix) *net.IPNet { return prefixIPNet(p.Masked()) }

// Name returns the namespace name.
func (n *Net) Name() string { return n.opts.Name }

// Namespace returns nimbus's namespace. It stays open until Close.
func (n *Net) Namespace() *Namespace { return n.ns }

// UplinkName returns the name of nimbus's end of the host veth (the
// interface traffic leaves by towards the host and the outside).
func (n *Net) UplinkName() string { return UplinkLinkName(n.opts.Name) }

// HostAddr returns the host end's address (the next hop of nimbus's default
// route and the client address the host uses towards frontends).
func (n *Net) HostAddr() netip.Addr { return n.hostIP }

// UplinkAddr returns nimbus's end's address.
func (n *Net) UplinkAddr() netip.Addr { return n.nsIP }

// EnsureSubnet creates (or adopts) the bridge of a subnet with the gateway
// address on it and returns the bridge name. Idempotent.
func (n *Net) EnsureSubnet(ctx context.Context, subnet netip.Prefix, gateway netip.Addr) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if !subnet.Addr().Is4() || !subnet.Contains(gateway) {
		return "", fmt.Errorf("hostnet: gateway %s not in subnet %s", gateway, subnet)
	}
	subnet = subnet.Masked()
	n.mu.Lock()
	defer n.mu.Unlock()
	name := BridgeName(subnet)
	if gw, ok := n.subnets[subnet]; ok && gw == gateway {
		return name, nil
	}
	h := n.ns.h
	link, err := h.LinkByName(name)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("hostnet: add bridge %s: %w", name, err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return "", fmt.Errorf("hostnet: %w", err)
		}
	}
	if err := ensureAddr(h, link, netip.PrefixFrom(gateway, subnet.Bits())); err != nil {
		return "", err
	}
	if err := h.LinkSetUp(link); err != nil {
		return "", fmt.Errorf("hostnet: up %s: %w", name, err)
	}
	err = n.ns.Do(func() error {
		for _, kv := range [][2]string{{"proxy_arp", "1"}, {"proxy_arp_pvlan", "1"}, {"send_redirects", "0"}, {"rp_filter", "0"}} {
			if err := writeSysctl("net/ipv4/conf/"+name+"/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
		// Answer proxied ARP at once, not after up to 0.8 s.
		return writeSysctl("net/ipv4/neigh/"+name+"/proxy_delay", "0")
	})
	if err != nil {
		return "", err
	}
	n.subnets[subnet] = gateway
	return name, nil
}

// AttachPort puts link (a veth end inside nimbus's namespace) on the
// subnet's bridge as an isolated port and brings it up. The subnet must have
// been ensured.
func (n *Net) AttachPort(ctx context.Context, subnet netip.Prefix, link netlink.Link) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	h := n.ns.h
	br, err := h.LinkByName(BridgeName(subnet.Masked()))
	if err != nil {
		return fmt.Errorf("hostnet: bridge of %s: %w", subnet, err)
	}
	if err := h.LinkSetMaster(link, br); err != nil {
		return fmt.Errorf("hostnet: attach %s: %w", link.Attrs().Name, err)
	}
	if err := h.LinkSetIsolated(link, true); err != nil {
		return fmt.Errorf("hostnet: isolate %s: %w", link.Attrs().Name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("hostnet: up %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// RemoveSubnet deletes a subnet's bridge. Removing a missing subnet succeeds.
func (n *Net) RemoveSubnet(ctx context.Context, subnet netip.Prefix) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	subnet = subnet.Masked()
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.subnets, subnet)
	link, err := n.ns.h.LinkByName(BridgeName(subnet))
	if err != nil {
		return nil
	}
	if err := n.ns.h.LinkDel(link); err != nil {
		return fmt.Errorf("hostnet: delete bridge %s: %w", link.Attrs().Name, err)
	}
	return nil
}

// DialContext connects from inside nimbus's namespace (the source address
// is the namespace's, e.g. a subnet gateway). It is what the health prober
// uses to reach instances. The socket is created on a thread that entered
// the namespace; the connection then works from any goroutine.
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return DialIn(ctx, n.ns, network, address)
}

// DialIn dials from inside ns.
func DialIn(ctx context.Context, ns *Namespace, network, address string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Close releases nimbus's handles on the namespace. With teardown it also
// deletes everything Setup made: the host veth (and with it its routes) and
// nimbus's namespace with every bridge and port inside. Without teardown
// the namespace stays for the next nimbus process to adopt.
func (n *Net) Close(ctx context.Context, teardown bool) error {
	var errs []error
	if teardown {
		if l, err := n.hostH.LinkByName(HostLinkName(n.opts.Name)); err == nil {
			if err := n.hostH.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("hostnet: delete %s: %w", l.Attrs().Name, err))
			}
		}
	}
	n.release()
	if teardown {
		if err := DeleteNamespace(n.opts.Name); err != nil {
			errs = append(errs, err)
		}
		n.log.Info("hostnet torn down", "name", n.opts.Name)
	}
	return errors.Join(errs...)
}

func (n *Net) release() {
	if n.hostH != nil {
		n.hostH.Close()
		n.hostH = nil
	}
	if n.host != nil {
		n.host.Close()
		n.host = nil
	}
	if n.ns != nil {
		n.ns.Close()
	}
}

// Teardown removes what a Setup with these options may have left behind
// (after a crash, with no Net at hand): the host veth and the namespace.
// Missing pieces are fine.
func Teardown(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var hostFile *os.File
	if opts.HostNamespace == "" {
		hostFile, err = OpenCurrentNamespace()
	} else {
		hostFile, err = os.Open(NetnsDir + "/" + opts.HostNamespace)
	}
	var errs []error
	if err == nil {
		h, herr := netlink.NewHandleAt(netns.NsHandle(int(hostFile.Fd())))
		if herr == nil {
			if l, err := h.LinkByName(HostLinkName(opts.Name)); err == nil {
				if err := h.LinkDel(l); err != nil {
					errs = append(errs, fmt.Errorf("hostnet: delete %s: %w", l.Attrs().Name, err))
				}
			}
			h.Close()
		}
		hostFile.Close()
	}
	if err := DeleteNamespace(opts.Name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
