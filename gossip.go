package membership

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/meshward/membership/internal/query"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// Application broadcasts ride the protocol's datagrams like membership
// news (swim: each is sent λ·⌈log2(n+1)⌉ times by every member that holds
// it, sharing the byte budget so that membership news never starves), and
// datagrams to one member travel alone. The first byte of what the core
// carries says what it is: an application broadcast or a query, and for
// datagrams an application message, a query asked again, a response or
// acknowledgement, or a response to relay.
const (
	bcastApp   = 0x01
	bcastQuery = 0x02

	directApp      = 0x01
	directQuery    = 0x02
	directResponse = 0x03
	directRelay    = 0x04
)

// Broadcast sends payload to every member: it is piggybacked on the
// protocol's datagrams and gossiped, and every member that is alive while
// it spreads puts it on its Messages channel once (MessageBroadcast), but
// not this node. key, if not empty, names what the broadcast is about: a
// newer broadcast with the same key replaces an older one still spreading
// (memberlist's named broadcasts), and a member that got the newer never
// delivers the older after it. The payload must fit one datagram with the
// key: MaxBroadcastSize says how much that is; more is an error that says
// the limit (ErrMessageTooLarge).
func (n *Node) Broadcast(key string, payload []byte) error {
	if !n.running() {
		return ErrShutdown
	}
	body := make([]byte, 0, 1+len(payload))
	body = append(append(body, bcastApp), payload...)
	var err error
	var limit int
	n.do(func() {
		err = n.core.Broadcast(key, body)
		limit = n.core.MaxBroadcastPayload(len(key)) - 1
		if now := time.Now(); err == nil && now.After(n.gossipHold) {
			// An idle node would gossip this broadcast at once and then
			// wait a gossip interval for the next: hold the next Tick a
			// moment, so that a burst of calls leaves in one round.
			n.gossipHold = now.Add(broadcastCoalesce)
		}
	})
	switch {
	case errors.Is(err, swim.ErrBroadcastTooLarge):
		return fmt.Errorf("membership: broadcast: %w: %d bytes with a %d-byte key, at most %d", ErrMessageTooLarge, len(payload), len(key), limit)
	case err != nil:
		return fmt.Errorf("membership: broadcast: %w", err)
	}
	return nil
}

// broadcastCoalesce is how long the node holds its timers after a
// Broadcast call, so that calls made together are gossiped together; it
// delays a lone broadcast by as much.
const broadcastCoalesce = 2 * time.Millisecond

// MaxBroadcastSize is the largest payload Broadcast sends with a key of
// keyLen bytes: what one datagram holds behind the largest probe message.
func (n *Node) MaxBroadcastSize(keyLen int) int {
	var limit int
	n.do(func() { limit = n.core.MaxBroadcastPayload(keyLen) - 1 })
	return limit
}

// SendTo sends payload to the named member in one sealed datagram, best
// effort: it returns once the datagram is sent, and it may be lost. The
// member receives it on its Messages channel (MessageDirect). A member we
// do not know as alive is refused (ErrNotAlive); the payload must fit one
// datagram (MaxSendToSize; more is ErrMessageTooLarge).
func (n *Node) SendTo(name string, payload []byte) error {
	if !n.running() {
		return ErrShutdown
	}
	if limit := n.maxDirect(); len(payload) > limit {
		return fmt.Errorf("membership: send to %q: %w: %d bytes, at most %d", name, ErrMessageTooLarge, len(payload), limit)
	}
	addr, err := n.aliveAddr(name)
	if err != nil {
		return fmt.Errorf("membership: send to %q: %w", name, err)
	}
	body := make([]byte, 0, 1+len(payload))
	body = append(append(body, directApp), payload...)
	n.do(func() { err = n.sendDirect(addr, body) })
	result := metrics.ResultOK
	if err != nil {
		result = metrics.ResultError
	}
	n.met.UserMessage(MessageDirect.String()+"_sent", result)
	return err
}

// MaxSendToSize is the largest payload SendTo sends.
func (n *Node) MaxSendToSize() int { return n.maxDirect() }

// maxDirect is the largest application payload of a direct datagram.
func (n *Node) maxDirect() int { return n.maxDirectPayload }

// sendDirect sends body (its first byte says what it is) to addr in one
// datagram. It runs on the loop goroutine.
func (n *Node) sendDirect(to netip.AddrPort, body []byte) error {
	if len(body)-1 > n.maxDirect() {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMessageTooLarge, len(body)-1, n.maxDirect())
	}
	if to == n.tr.LocalAddr() {
		// To ourselves (our own query's answer): no need for the
		// network, which could lose it.
		m := swim.Message{Kind: swim.KindDirect, From: n.cfg.name, Payload: body}
		n.onDirect(to, &m)
		return nil
	}
	msgs := []swim.Message{{Kind: swim.KindDirect, From: n.cfg.name, Payload: body}}
	return n.sendDatagram(&swim.Datagram{To: to, Msgs: msgs}, time.Now())
}

// deliverBroadcast hands a broadcast the core received for the first time
// to the application or to the query machinery.
func (n *Node) deliverBroadcast(b *swim.Broadcast) {
	if len(b.Payload) == 0 {
		n.drops[metrics.DropDecode]++
		return
	}
	switch b.Payload[0] {
	case bcastApp:
		n.offerMessage(Message{Kind: MessageBroadcast, From: b.From, Key: b.Key, Payload: b.Payload[1:]})
	case bcastQuery:
		n.onQuery(b.Payload[1:])
	default:
		// A kind of a newer version: skip it, as the codec skips
		// unknown message kinds.
	}
}

// onDirect handles a direct datagram's message. It runs on the loop
// goroutine.
func (n *Node) onDirect(from netip.AddrPort, m *swim.Message) {
	if len(m.Payload) == 0 {
		n.drop(metrics.DropDecode, from, errors.New("empty direct message"))
		return
	}
	body := m.Payload[1:]
	switch m.Payload[0] {
	case directApp:
		n.offerMessage(Message{Kind: MessageDirect, From: m.From, Payload: append([]byte(nil), body...)})
	case directQuery:
		n.onQuery(body)
	case directResponse:
		n.onResponse(from, body)
	case directRelay:
		r, err := query.DecodeRelayed(body, n.maxDirect())
		if err != nil {
			n.drop(metrics.DropDecode, from, err)
			return
		}
		to, _ := netip.ParseAddrPort(r.To) // checked by DecodeRelayed
		if err := n.sendDirect(to, r.Response); err != nil {
			n.log.Debug("relay of a query response failed", "to", to, "err", err)
		}
	}
}
