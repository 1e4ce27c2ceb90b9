package nft

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sort"
	"time"

	"github.com/google/nftables"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TCP reset on idle. The kernel expires an idle conntrack entry silently;
// it cannot send RSTs at that moment because it does not keep the
// endpoints' sequence numbers where anything can read them. So the packet
// path records them: for flows of rules with TCP reset, every packet
// updates an element of rst_c2s (client->frontend: the client's ack) or
// rst_s2c (backend->client: the backend's ack and address), with the idle
// timeout as the element's timeout. The reaper below polls the two maps;
// when a flow's elements are about to expire it waits for the expiry,
// checks they really expired (no packet refreshed them), and sends each
// side an RST whose sequence number is exactly the ack that side sent last
// (RFC 5961: an RST is accepted when its sequence number is the receiver's
// rcv_nxt). It then deletes the conntrack entry. The RSTs are raw packets
// sent from nimbus's namespace with the peer's addresses.

// reapTick is the reaper's polling period (and so its precision).
const reapTick = 50 * time.Millisecond

type idleFlow struct {
	key          string
	orig         [16]byte // saddr . sport(pad) . daddr . dport(pad)
	c2s, s2c     bool
	clientAck    uint32
	backendAck   uint32
	backend      [4]byte
	backendPort  uint16
	expiresAfter time.Duration
}

// reaper runs until ctx ends. It only reads the kernel while some rule has
// TCP reset.
func (e *Engine) reaper(ctx context.Context) {
	t := time.NewTicker(reapTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := e.dueFlows(2 * reapTick)
		if len(due) == 0 {
			continue
		}
		sort.Slice(due, func(i, j int) bool { return due[i].expiresAfter < due[j].expiresAfter })
		last := due[len(due)-1].expiresAfter
		select {
		case <-ctx.Done():
			return
		case <-time.After(last + 10*time.Millisecond):
		}
		// Still present means a packet refreshed the flow: not idle.
		alive := map[string]bool{}
		for _, f := range e.dueFlows(time.Hour) {
			alive[f.key] = true
		}
		for _, f := range due {
			if !alive[f.key] {
				e.resetFlow(f)
			}
		}
	}
}

// dueFlows lists the recorded flows whose elements all expire within d.
func (e *Engine) dueFlows(d time.Duration) []*idleFlow {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.applied == nil || e.applied.set(mapResetIdle).count() == 0 {
		return nil
	}
	t := tableOf(e.applied)
	flows := map[string]*idleFlow{}
	get := func(name string) []nftables.SetElement {
		els, err := e.conn.GetSetElements(setHandle(t, e.applied.set(name)))
		if err != nil {
			e.log.Debug("nft reset reaper list", "set", name, "err", err)
			return nil
		}
		return els
	}
	flow := func(key []byte) *idleFlow {
		f, ok := flows[string(key)]
		if !ok && len(key) == 16 {
			f = &idleFlow{key: string(key)}
			copy(f.orig[:], key)
			flows[string(key)] = f
		}
		return f
	}
	for _, el := range get(mapRstC2S) {
		if f := flow(el.Key); f != nil && len(el.Val) >= 4 {
			f.c2s, f.clientAck = true, binary.BigEndian.Uint32(el.Val)
			f.expiresAfter = max(f.expiresAfter, el.Expires)
		}
	}
	for _, el := range get(mapRstS2C) {
		if f := flow(el.Key); f != nil && len(el.Val) >= 10 {
			f.s2c, f.backendAck = true, binary.BigEndian.Uint32(el.Val)
			copy(f.backend[:], el.Val[4:8])
			f.backendPort = binary.BigEndian.Uint16(el.Val[8:10])
			f.expiresAfter = max(f.expiresAfter, el.Expires)
		}
	}
	var out []*idleFlow
	for _, f := range flows {
		if f.expiresAfter <= d {
			out = append(out, f)
		}
	}
	return out
}

// resetFlow sends the RSTs and forgets the conntrack entry.
func (e *Engine) resetFlow(f *idleFlow) {
	var client, fe [4]byte
	copy(client[:], f.orig[0:4])
	cport := binary.BigEndian.Uint16(f.orig[4:6])
	copy(fe[:], f.orig[8:12])
	fport := binary.BigEndian.Uint16(f.orig[12:14])
	if f.c2s {
		if err := e.sendRST(fe, fport, client, cport, f.clientAck); err != nil {
			e.log.Warn("nft idle reset to client", "err", err)
		}
	}
	if f.s2c {
		if err := e.sendRST(client, cport, f.backend, f.backendPort, f.backendAck); err != nil {
			e.log.Warn("nft idle reset to backend", "err", err)
		}
	}
	flt := &vnl.ConntrackFilter{}
	flt.AddIP(vnl.ConntrackOrigSrcIP, net.IP(client[:]))
	flt.AddIP(vnl.ConntrackOrigDstIP, net.IP(fe[:]))
	flt.AddProtocol(unix.IPPROTO_TCP)
	flt.AddPort(vnl.ConntrackOrigSrcPort, cport)
	flt.AddPort(vnl.ConntrackOrigDstPort, fport)
	e.ns.Handle().ConntrackDeleteFilters(vnl.ConntrackTable, unix.AF_INET, flt)
	e.log.Debug("nft idle flow reset", "client", fmt.Sprintf("%v:%d", net.IP(client[:]), cport))
}

// sendRST sends one TCP RST from src:sport to dst:dport with sequence
// number seq through the raw socket in nimbus's namespace.
func (e *Engine) sendRST(src [4]byte, sport uint16, dst [4]byte, dport uint16, seq uint32) error {
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], 40)
	binary.BigEndian.PutUint16(pkt[6:], 0x4000) // DF
	pkt[8] = 64
	pkt[9] = unix.IPPROTO_TCP
	copy(pkt[12:16], src[:])
	copy(pkt[16:20], dst[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:20], 0))
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	tcp[13] = 0x04 // RST
	var pseudo uint32
	pseudo += uint32(binary.BigEndian.Uint16(src[0:2])) + uint32(binary.BigEndian.Uint16(src[2:4]))
	pseudo += uint32(binary.BigEndian.Uint16(dst[0:2])) + uint32(binary.BigEndian.Uint16(dst[2:4]))
	pseudo += unix.IPPROTO_TCP + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, pseudo))
	return unix.Sendto(e.rawFd, pkt, 0, &unix.SockaddrInet4{Addr: dst})
}

// checksum is the Internet checksum of b plus an initial sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
