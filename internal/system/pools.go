package system

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"nimbus/internal/driver/process"
	"nimbus/internal/hostnet"
)

// DefaultInternalPool is the loopback range where, with the userspace data
// plane, private (internal) frontends listen: a.b.c.d listens on the pool's
// first two bytes followed by c.d (127.103.c.d by default).
var DefaultInternalPool = netip.MustParsePrefix("127.103.0.0/16")

// processOwnerEnv is the environment entry the process driver tags its
// workloads with (NIMBUS_PROCESS_STATE_DIR=<absolute state dir>, see
// internal/driver/process): sockets of processes carrying this nimbus's
// entry are its own instances, left running by the previous start.
const processOwnerEnv = "NIMBUS_PROCESS_STATE_DIR"

// addrPool is one address range nimbus takes for itself, with the serve
// flag that sets it.
type addrPool struct {
	flag   string
	prefix netip.Prefix
	// ownLink is a host interface that is this nimbus's own (its host
	// veth, left by a previous start): its addresses and routes are not in
	// the way. "" if none.
	ownLink string
	// ownEnv marks processes whose sockets in the pool are this nimbus's
	// own (its instances, left running by a previous start). "" if none.
	ownEnv string
}

// addressPools lists the pools of opt in mode, defaults resolved.
func addressPools(mode Mode, opt Options) []addrPool {
	pools := []addrPool{{flag: "--public-pool", prefix: publicPool(opt.Node.PublicPool)}}
	switch mode.Driver {
	case Process:
		pp := opt.ProviderPool
		if !pp.IsValid() {
			pp = process.DefaultPool
		}
		env := ""
		if dir, err := filepath.Abs(filepath.Join(opt.Node.DataDir, "instances")); err == nil {
			env = processOwnerEnv + "=" + dir
		}
		pools = append(pools, addrPool{flag: "--provider-pool", prefix: pp, ownEnv: env})
	case Netns:
		name := opt.HostNet.Name
		if name == "" {
			name = hostnet.DefaultName
		}
		up := opt.HostNet.Uplink
		if !up.IsValid() {
			up = hostnet.DefaultUplink
		}
		own := hostnet.HostLinkName(name)
		pools[0].ownLink = own
		pools = append(pools, addrPool{flag: "--netns-uplink", prefix: up, ownLink: own})
	}
	if mode.Dataplane == Proxy {
		pools = append(pools, addrPool{flag: "--internal-pool", prefix: internalPool(opt.InternalPool)})
	}
	return pools
}

// internalPool is the effective internal pool.
func internalPool(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return DefaultInternalPool
	}
	return p
}

// hostAddr is an address assigned to a host interface, with its prefix.
type hostAddr struct {
	link string
	addr netip.Prefix
}

// hostRoute is a route of the host's main table.
type hostRoute struct {
	link string
	dst  netip.Prefix
}

// hostSocket is a bound socket of the host's network namespace: a TCP
// listener or any UDP socket.
type hostSocket struct {
	proto string
	addr  netip.AddrPort
	inode uint64
}

// hostState is what the host has in use when nimbus starts.
type hostState struct {
	addrs   []hostAddr
	routes  []hostRoute
	sockets []hostSocket
	// ownedBy reports whether the socket with this inode belongs to a
	// process whose environment has entry env. Nil: none does.
	ownedBy func(inode uint64, env string) bool
}

// checkPools refuses pools that overlap each other or something in use on
// the host: an address on an interface other than the pool's own, a route
// into the pool through another interface (routed pools), or a bound
// socket inside the pool that is not this nimbus's own (loopback pools).
// The error is one line naming both sides and the flag to change.
func checkPools(pools []addrPool, h hostState) error {
	for i, a := range pools {
		for _, b := range pools[i+1:] {
			if a.prefix.Overlaps(b.prefix) {
				return fmt.Errorf("address pools overlap: %s %s and %s %s; give one of them another range", a.flag, a.prefix, b.flag, b.prefix)
			}
		}
	}
	for _, p := range pools {
		inUse := func(what string) error {
			return fmt.Errorf("address pool %s %s is in use on this host: %s; choose a free range with %s", p.flag, p.prefix, what, p.flag)
		}
		for _, a := range h.addrs {
			if a.link == p.ownLink && p.ownLink != "" {
				continue
			}
			if p.prefix.Contains(a.addr.Addr()) {
				return inUse(fmt.Sprintf("address %s is assigned to %s", a.addr.Addr(), a.link))
			}
			if !p.prefix.Addr().IsLoopback() && a.addr.Bits() > 0 && a.addr.Masked().Overlaps(p.prefix) {
				return inUse(fmt.Sprintf("%s has %s, which overlaps it", a.link, a.addr))
			}
		}
		if !p.prefix.Addr().IsLoopback() {
			for _, r := range h.routes {
				if r.link == p.ownLink && p.ownLink != "" || r.dst.Bits() == 0 {
					continue
				}
				if r.dst.Overlaps(p.prefix) {
					return inUse(fmt.Sprintf("route %s goes to %s", r.dst, r.link))
				}
			}
			continue
		}
		for _, s := range h.sockets {
			if !p.prefix.Contains(s.addr.Addr()) {
				continue
			}
			if p.ownEnv != "" && h.ownedBy != nil && h.ownedBy(s.inode, p.ownEnv) {
				continue
			}
			return inUse(fmt.Sprintf("%s (%s) is bound by another process, perhaps another nimbus", s.addr, s.proto))
		}
	}
	return nil
}

// readHost reads the host's interface addresses, and on Linux its IPv4
// routes and bound sockets from /proc/thread-self/net on a locked thread:
// the calling goroutine's network namespace, where nimbus's listeners will
// be. (/proc/net follows the main thread, which a namespace probe may have
// left in another namespace.)
func readHost() (hostState, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var h hostState
	ifs, err := net.Interfaces()
	if err != nil {
		return h, fmt.Errorf("list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return h, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(n.IP)
			if !ok {
				continue
			}
			bits, _ := n.Mask.Size()
			h.addrs = append(h.addrs, hostAddr{link: ifc.Name, addr: netip.PrefixFrom(ip.Unmap(), bits)})
		}
	}
	if h.routes, err = readRoutes(procNet + "route"); err != nil && !os.IsNotExist(err) {
		return h, err
	}
	for _, f := range []struct{ proto, path string }{
		{"tcp", procNet + "tcp"}, {"tcp", procNet + "tcp6"}, {"udp", procNet + "udp"}, {"udp", procNet + "udp6"},
	} {
		socks, err := readSockets(f.path, f.proto)
		if err != nil && !os.IsNotExist(err) {
			return h, err
		}
		h.sockets = append(h.sockets, socks...)
	}
	h.ownedBy = socketOwnedBy
	return h, nil
}

// procNet is the current thread's /proc/net.
const procNet = "/proc/thread-self/net/"

// readRoutes parses /proc/net/route (IPv4 main table; addresses are
// little-endian hex).
func readRoutes(path string) ([]hostRoute, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []hostRoute
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 8 || fs[0] == "Iface" {
			continue
		}
		dst, err1 := hexAddr(fs[1])
		mask, err2 := hexAddr(fs[7])
		if err1 != nil || err2 != nil {
			continue
		}
		m := mask.As4()
		bits, _ := net.IPMask(m[:]).Size()
		out = append(out, hostRoute{link: fs[0], dst: netip.PrefixFrom(dst, bits).Masked()})
	}
	return out, sc.Err()
}

// readSockets parses a /proc/net/{tcp,udp}[6] table: TCP listeners and
// every UDP socket, with their local address and inode.
func readSockets(path, proto string) ([]hostSocket, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []hostSocket
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[0] == "sl" {
			continue
		}
		if proto == "tcp" && fs[3] != "0A" { // TCP_LISTEN
			continue
		}
		host, port, ok := strings.Cut(fs[1], ":")
		if !ok {
			continue
		}
		a, err := hexAddr(host)
		p, perr := strconv.ParseUint(port, 16, 16)
		inode, ierr := strconv.ParseUint(fs[9], 10, 64)
		if err != nil || perr != nil || ierr != nil {
			continue
		}
		out = append(out, hostSocket{proto: proto, addr: netip.AddrPortFrom(a.Unmap(), uint16(p)), inode: inode})
	}
	return out, sc.Err()
}

// hexAddr decodes a /proc/net address: 8 or 32 hex digits, each 32-bit
// word in host (little-endian) byte order.
func hexAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, fmt.Errorf("bad /proc/net address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		slices.Reverse(b[i : i+4])
	}
	a, _ := netip.AddrFromSlice(b)
	return a, nil
}

// socketOwnedBy reports whether a process holding the socket with inode
// has entry env in its environment. It walks /proc/*/fd.
func socketOwnedBy(inode uint64, env string) bool {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name())
		fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, "fd", fd.Name())); err != nil || l != want {
				continue
			}
			b, _ := os.ReadFile(filepath.Join(dir, "environ"))
			if slices.Contains(strings.Split(string(b), "\x00"), env) {
				return true
			}
		}
	}
	return false
}
