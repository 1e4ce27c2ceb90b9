package proxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"nimbus/internal/dataplane"
)

// maxDatagram is the largest UDP payload the engine carries.
const maxDatagram = 65535

// udpListener serves one UDP frontend socket and its sessions.
type udpListener struct {
	e    *Engine
	key  lkey
	conn *net.UDPConn

	// active counts this listener's sessions against the per-frontend
	// budget.
	active atomic.Int64

	mu       sync.Mutex
	closed   bool
	sessions map[netip.AddrPort]*udpSession
}

// udpSession is one client's flow to one backend.
type udpSession struct {
	l         *udpListener
	client    netip.AddrPort
	backendID string
	addr      netip.AddrPort
	bc        *net.UDPConn
	wb        batchConn             // bc, for batched writes
	route     atomic.Pointer[route] // the route the backend was last validated against
	header    []byte                // PROXY v2 header to put in front of each datagram
	idle      time.Duration
	last      atomic.Int64
	closed    atomic.Bool
}

func (e *Engine) serveUDP(k lkey, c *net.UDPConn) *udpListener {
	l := &udpListener{e: e, key: k, conn: c, sessions: map[netip.AddrPort]*udpSession{}}
	e.wg.Add(1)
	go l.readLoop()
	return l
}

// batchConn reads and writes several datagrams per system call (recvmmsg
// and sendmmsg on Linux; one at a time elsewhere). ipv4.PacketConn and
// ipv6.PacketConn both implement it.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatchConn(c *net.UDPConn, v6 bool) batchConn {
	if v6 {
		return ipv6.NewPacketConn(c)
	}
	return ipv4.NewPacketConn(c)
}

// readBatch is how many datagrams the frontend socket reads per call.
const readBatch = 16

func (l *udpListener) readLoop() {
	defer l.e.wg.Done()
	rd := newBatchConn(l.conn, l.key.ip.Is6())
	in := make([]ipv4.Message, readBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, maxDatagram)}
	}
	out := make([]ipv4.Message, readBatch)
	bufs := make([][2][]byte, readBatch)
	for {
		n, err := rd.ReadBatch(in, 0)
		if err != nil {
			if isClosed(err) {
				return
			}
			continue
		}
		r := l.e.state.Load().routes[l.key]
		if r == nil {
			continue
		}
		// Datagrams of one client arrive in runs: write each run to its
		// session's backend socket in one call.
		for i := 0; i < n; {
			client := udpAddrPort(in[i].Addr)
			j := i + 1
			for j < n && udpAddrPort(in[j].Addr) == client {
				j++
			}
			s := l.session(r, client)
			if s == nil {
				i = j
				continue // no eligible backend: drop
			}
			batch := out[:0]
			var bytes uint64
			for k := i; k < j; k++ {
				payload := in[k].Buffers[0][:in[k].N]
				bytes += uint64(len(payload))
				b := &bufs[k-i]
				m := ipv4.Message{Buffers: b[:0]}
				if s.header != nil {
					m.Buffers = append(m.Buffers, s.header)
				}
				m.Buffers = append(m.Buffers, payload)
				batch = append(batch, m)
			}
			sent := 0
			for sent < len(batch) {
				w, err := s.wb.WriteBatch(batch[sent:], 0)
				if err != nil || w == 0 {
					break
				}
				sent += w
			}
			if sent > 0 {
				s.last.Store(time.Now().UnixNano())
				r.counters.AddBytes(bytes, 0, uint64(sent), 0)
			}
			i = j
		}
	}
}

func udpAddrPort(a net.Addr) netip.AddrPort {
	u, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := u.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// session finds or creates the client's session under r, moving it when its
// backend is no longer eligible.
func (l *udpListener) session(r *route, client netip.AddrPort) *udpSession {
	l.mu.Lock()
	s := l.sessions[client]
	l.mu.Unlock()
	if s != nil && s.route.Load() != r {
		if r.eligibleFor(s.backendID, s.addr) {
			s.route.Store(r)
		} else {
			s.close()
			s = nil
		}
	}
	if s != nil && !s.closed.Load() {
		return s
	}
	local := l.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	b, addr, ok := r.pick(dataplane.UDP, client, local)
	if !ok || !l.e.admit(r, dataplane.ProtoUDP, client, b, addr.Port()) {
		return nil
	}
	if why := l.e.budget.acquire(&l.active); why != "" {
		// Over budget: no session, the datagram is dropped.
		l.e.budget.refused(l.key, r.counters, dataplane.UDP, why)
		return nil
	}
	bc, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		l.e.budget.release(&l.active)
		l.e.log.Debug("backend dial failed", "listener", l.key.String(), "backend", b.ID, "err", err)
		return nil
	}
	s = &udpSession{l: l, client: client, backendID: b.ID, addr: addr, bc: bc, idle: r.spec.idle,
		wb: newBatchConn(bc, addr.Addr().Is6())}
	s.route.Store(r)
	if r.spec.proxyProto {
		h := proxyproto.HeaderProxyFromAddrs(2, net.UDPAddrFromAddrPort(client), net.UDPAddrFromAddrPort(local))
		if s.header, err = h.Format(); err != nil {
			_ = bc.Close()
			l.e.budget.release(&l.active)
			return nil
		}
	}
	s.last.Store(time.Now().UnixNano())
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = bc.Close()
		l.e.budget.release(&l.active)
		return nil
	}
	l.sessions[client] = s
	l.mu.Unlock()
	l.e.wg.Add(1)
	go s.replies()
	return s
}

// replies sends the backend's datagrams back to the client from the
// frontend socket, and ends the session when it has been idle.
func (s *udpSession) replies() {
	defer s.l.e.wg.Done()
	defer s.close()
	buf := make([]byte, maxDatagram)
	tick := idleTick(s.idle)
	for {
		_ = s.bc.SetReadDeadline(time.Now().Add(tick))
		n, err := s.bc.Read(buf)
		now := time.Now()
		if err != nil {
			if s.closed.Load() || isClosed(err) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && now.Sub(time.Unix(0, s.last.Load())) >= s.idle {
				return
			}
			// ICMP port unreachable and the like: the backend may come back.
			continue
		}
		if _, err := s.l.conn.WriteToUDPAddrPort(buf[:n], s.client); err == nil {
			s.last.Store(now.UnixNano())
			if r := s.route.Load(); r != nil {
				r.counters.AddBytes(0, uint64(n), 0, 1)
			}
		}
	}
}

// close ends the session and forgets it.
func (s *udpSession) close() {
	if s.closed.Swap(true) {
		return
	}
	_ = s.bc.Close()
	s.l.e.budget.release(&s.l.active)
	s.l.mu.Lock()
	if s.l.sessions[s.client] == s {
		delete(s.l.sessions, s.client)
	}
	s.l.mu.Unlock()
}

func (l *udpListener) prune(r *route) {
	l.mu.Lock()
	var stale []*udpSession
	for _, s := range l.sessions {
		if r == nil || r.valid[s.backendID] != s.addr || !r.stillAllowed(dataplane.ProtoUDP, s.client, s.backendID, s.addr.Port()) {
			stale = append(stale, s)
		}
	}
	l.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
}

func (l *udpListener) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.conn.Close()
	l.prune(nil)
}
