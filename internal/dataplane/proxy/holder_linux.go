package proxy

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"nimbus/internal/dataplane"
)

// portHolder names the process holding listener k's address ("pid 42
// (nginx)"), best effort: it finds the socket's inode in /proc/net/{tcp,udp}
// (and the v6 tables, where a wildcard socket may hold the port), then the
// process with a descriptor on that inode. "" when not found (another
// network namespace, no permission, a race).
func portHolder(k lkey) string {
	base := "tcp"
	if k.proto == dataplane.UDP {
		base = "udp"
	}
	// The calling thread's network namespace: the one the listen failed
	// in (/proc/net is the main thread's).
	dir := "/proc/thread-self/net/"
	if _, err := os.Stat(dir); err != nil {
		dir = "/proc/net/"
	}
	var inodes []string
	for _, f := range []string{base, base + "6"} {
		inodes = append(inodes, socketInodes(dir+f, k)...)
	}
	if len(inodes) == 0 {
		return ""
	}
	want := map[string]bool{}
	for _, in := range inodes {
		want["socket:["+in+"]"] = true
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, err := os.ReadDir(p + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && want[l] {
				comm, _ := os.ReadFile(p + "/comm")
				return fmt.Sprintf("pid %s (%s)", filepath.Base(p), strings.TrimSpace(string(comm)))
			}
		}
	}
	return ""
}

// socketInodes returns the inodes of the sockets in the /proc/net table at
// path bound to k's port on k's address or a wildcard address (TCP: only
// listening sockets).
func socketInodes(path string, k lkey) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 {
			continue
		}
		if k.proto == dataplane.TCP && fs[3] != "0A" { // TCP_LISTEN
			continue
		}
		addr, ok := parseProcAddr(fs[1])
		if !ok || addr.Port() != k.port {
			continue
		}
		a := addr.Addr().Unmap()
		if a == k.ip || a.IsUnspecified() {
			out = append(out, fs[9])
		}
	}
	return out
}

// parseProcAddr parses a /proc/net address "0100007F:1F90": the address in
// host byte order 32-bit words (little-endian on the machines nimbus runs
// on), then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, false
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	a, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(a, uint16(port)), true
}
