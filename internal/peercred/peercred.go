// Package peercred finds which local user owns the other end of a TCP
// connection on this host, from the kernel's socket tables /proc/net/tcp and
// /proc/net/tcp6, the way identd does: the connection's peer socket is the
// entry whose local and remote address:port are the accepted connection's
// remote and local ones, and its uid column names the user.
//
// ParseTable is the pure parser; Lookup reads the tables and finds the
// peer. Only full sockets count: a connection whose peer has gone (closed
// with a reset, or in TIME_WAIT, whose entries the kernel prints with uid 0)
// is not found, so a caller that refuses on error fails closed.
package peercred

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ErrNotFound means no socket of the tables matches the connection: the
// peer is not a socket of this host's network namespace, has gone, or is
// in a state without an owner.
var ErrNotFound = errors.New("peercred: no socket of this host matches the connection")

// State is a TCP socket state as the kernel numbers it (include/net/tcp_states.h).
type State uint8

// The TCP states of the st column.
const (
	Established State = 0x01
	SynSent     State = 0x02
	SynRecv     State = 0x03
	FinWait1    State = 0x04
	FinWait2    State = 0x05
	TimeWait    State = 0x06
	Close       State = 0x07
	CloseWait   State = 0x08
	LastAck     State = 0x09
	Listen      State = 0x0A
	Closing     State = 0x0B
	NewSynRecv  State = 0x0C
)

// owned reports whether a socket in state st is a full socket of a
// connection whose uid column is its owner's: established, or closing after
// having been established. TIME_WAIT entries always print uid 0, request
// sockets (SYN_RECV, NEW_SYN_RECV) the listener's, so neither counts.
func (st State) owned() bool {
	switch st {
	case Established, FinWait1, FinWait2, CloseWait, LastAck, Closing:
		return true
	}
	return false
}

// Entry is one socket of /proc/net/tcp or /proc/net/tcp6.
type Entry struct {
	// Local and Remote are the socket's own and its peer's address and
	// port; IPv4 addresses are 4-byte, IPv6 ones (IPv4-mapped included) 16-byte.
	Local, Remote netip.AddrPort
	// State is the TCP state (st column).
	State State
	// UID is the owner's user id (uid column), in the reader's user namespace.
	UID uint32
	// Inode is the socket's inode (0 for sockets without one, such as TIME_WAIT).
	Inode uint64
}

// ParseTable parses the content of /proc/net/tcp or /proc/net/tcp6: a
// header line, then one socket a line. Addresses are hexadecimal in the
// kernel's byte order (this machine's), ports hexadecimal. It returns an
// error, and no entries, if any line is malformed.
func ParseTable(b []byte) ([]Entry, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 512), 64*1024)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("peercred: %w", err)
		}
		return nil, errors.New("peercred: empty socket table")
	}
	if f := strings.Fields(sc.Text()); len(f) < 3 || f[0] != "sl" || f[1] != "local_address" {
		return nil, fmt.Errorf("peercred: unexpected header %q", truncate(sc.Text()))
	}
	var out []Entry
	for line := 2; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		e, err := parseLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("peercred: line %d: %w", line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("peercred: %w", err)
	}
	return out, nil
}

// parseLine parses "sl: local remote st tx:rx tr:when retrnsmt uid timeout inode ...".
func parseLine(s string) (Entry, error) {
	f := strings.Fields(s)
	if len(f) < 10 || !strings.HasSuffix(f[0], ":") {
		return Entry{}, fmt.Errorf("malformed entry %q", truncate(s))
	}
	var e Entry
	var err error
	if e.Local, err = parseAddrPort(f[1]); err != nil {
		return Entry{}, fmt.Errorf("local address: %w", err)
	}
	if e.Remote, err = parseAddrPort(f[2]); err != nil {
		return Entry{}, fmt.Errorf("remote address: %w", err)
	}
	if e.Local.Addr().Is4() != e.Remote.Addr().Is4() {
		return Entry{}, fmt.Errorf("local and remote address families differ in %q", truncate(s))
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil || len(f[3]) != 2 {
		return Entry{}, fmt.Errorf("state %q", truncate(f[3]))
	}
	e.State = State(st)
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return Entry{}, fmt.Errorf("uid %q", truncate(f[7]))
	}
	e.UID = uint32(uid)
	if e.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return Entry{}, fmt.Errorf("inode %q", truncate(f[9]))
	}
	return e, nil
}

// parseAddrPort parses "0100007F:1F90" (IPv4) or 32 hex digits and a port (IPv6).
func parseAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok || len(p) != 4 || (len(h) != 8 && len(h) != 32) {
		return netip.AddrPort{}, fmt.Errorf("malformed %q", truncate(s))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q", truncate(p))
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q", truncate(h))
	}
	// The kernel prints each 32-bit word of the address as a host-order
	// integer; rewrite each as the bytes it holds in memory.
	var b [16]byte
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	var a netip.Addr
	if len(raw) == 4 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16(b)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// NetDirs are the directories whose tcp and tcp6 socket tables Lookup
// reads, in order: the calling thread's network namespace, then the
// process's (its main thread's). The tables show the sockets of one
// namespace only, and a Go program's threads need not share one: a
// goroutine locked to its thread may move it to another, and when that
// thread is the main thread it stays there. FindPeer's check that our own
// end of the connection is in the table picks the namespace it lives in.
var NetDirs = []string{"/proc/thread-self/net", "/proc/self/net"}

// Lookup returns the uid of the user owning the peer of an accepted TCP
// connection whose local (our) and remote (peer) addresses are given, by
// reading the tcp and tcp6 tables of NetDirs until FindPeer finds the
// peer. It fails with ErrNotFound if no table holds the connection, or with
// the error of reading or parsing one (a missing tcp6 table, on a kernel
// without IPv6, is skipped).
func Lookup(local, remote netip.AddrPort) (uint32, error) {
	var firstErr error
	for _, dir := range NetDirs {
		entries, err := readTables(dir)
		if err == nil {
			var uid uint32
			if uid, err = FindPeer(entries, local, remote); err == nil {
				return uid, nil
			}
		}
		if firstErr == nil || (errors.Is(err, ErrNotFound) && !errors.Is(firstErr, ErrNotFound)) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("%w (no socket tables to read)", ErrNotFound)
	}
	return 0, firstErr
}

// readTables reads and parses dir/tcp and dir/tcp6.
func readTables(dir string) ([]Entry, error) {
	var all []Entry
	for _, name := range []string{"tcp", "tcp6"} {
		p := dir + "/" + name
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) && name == "tcp6" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("peercred: read socket table: %w", err)
		}
		es, err := ParseTable(b)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, p)
		}
		all = append(all, es...)
	}
	return all, nil
}

// FindPeer returns the uid of the socket in entries whose local address is
// remote and whose remote address is local: the other end of our accepted
// connection local↔remote. Addresses compare with IPv4-mapped IPv6 ones
// unmapped, so a dual-stack listener finds an IPv4 client. As a check that
// entries come from the network namespace the connection lives in, our own
// end (local↔remote) must be among them too. The peer must be a full
// socket (established or closing); otherwise, or if either end is
// missing, or several sockets match, it returns ErrNotFound.
func FindPeer(entries []Entry, local, remote netip.AddrPort) (uint32, error) {
	local, remote = unmap(local), unmap(remote)
	var uid uint32
	peers, ours := 0, false
	for _, e := range entries {
		l, r := unmap(e.Local), unmap(e.Remote)
		switch {
		case l == remote && r == local && e.State.owned():
			peers++
			uid = e.UID
		case l == local && r == remote:
			ours = true
		}
	}
	if peers != 1 || !ours {
		return 0, fmt.Errorf("%w (%s → %s)", ErrNotFound, remote, local)
	}
	return uid, nil
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
