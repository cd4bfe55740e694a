package conntest

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
)

// RebindingDNS is a DNS server that answers A queries with First once and with Then afterwards:
// the DNS rebinding an attacker's name server does, so that a check passes and the connection
// goes elsewhere. It answers no other query type (no AAAA records).
type RebindingDNS struct {
	First, Then netip.Addr
	// Queries counts the A queries answered.
	Queries atomic.Int32
	conn    net.PacketConn
}

// NewRebindingDNS starts the server on a loopback UDP port.
func NewRebindingDNS(first, then netip.Addr) (*RebindingDNS, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &RebindingDNS{First: first, Then: then, conn: c}
	go d.serve()
	return d, nil
}

// Resolver returns a resolver that asks only this server.
func (d *RebindingDNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
}

// Close stops the server.
func (d *RebindingDNS) Close() error { return d.conn.Close() }

func (d *RebindingDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			_, _ = d.conn.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query (RFC 1035 section 4): the header, the question
// echoed, and for an A query one answer record pointing back at the question's name.
func (d *RebindingDNS) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE and QCLASS
	if end > len(q) {
		return nil
	}
	question := q[12:end]
	isA := binary.BigEndian.Uint16(q[end-4:]) == 1
	resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, question...)
	if !isA {
		return resp
	}
	addr := d.Then
	if d.Queries.Add(1) == 1 {
		addr = d.First
	}
	resp[7] = 1 // ANCOUNT
	ip := addr.As4()
	resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
	return append(resp, ip[:]...)
}
