package membership

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/meshward/membership/internal/envelope"
	"github.com/meshward/membership/internal/query"
	"github.com/meshward/membership/metrics"
	"github.com/meshward/membership/swim"
)

// Application messages: broadcasts to every member (gossip.go), and
// messages to one member, best effort in one sealed datagram (SendTo) or
// reliably over a sealed stream (SendReliable). All of them arrive on the
// Messages channel, which is bounded: when the application falls behind,
// broadcasts and datagrams are dropped and counted, never queued without
// bound, and the protocol never waits; a reliable send waits for room
// until its deadline and then fails on the sender's side.
//
// Ordering: none across senders. From one sender: reliable sends to one
// member arrive in the order the sender made them (the sender runs them
// one at a time per destination); broadcasts and datagrams may arrive in
// any order.

// MessageKind says how an application message travelled.
type MessageKind uint8

// The message kinds.
const (
	// MessageBroadcast: sent to every member with Broadcast.
	MessageBroadcast MessageKind = iota + 1
	// MessageDirect: sent to this member alone with SendTo (one datagram,
	// best effort).
	MessageDirect
	// MessageReliable: sent to this member alone with SendReliable (over
	// a stream; the sender learnt that it arrived).
	MessageReliable
	// MessageQuery: a query (see Query); Key is its name, and Respond
	// answers it.
	MessageQuery
)

// String returns "broadcast", "direct" or "reliable".
func (k MessageKind) String() string {
	switch k {
	case MessageBroadcast:
		return "broadcast"
	case MessageDirect:
		return "direct"
	case MessageReliable:
		return "reliable"
	case MessageQuery:
		return "query"
	}
	return fmt.Sprintf("message(%d)", uint8(k))
}

// Message is one application message received.
type Message struct {
	Kind MessageKind
	// From is the sender's member name (for a broadcast, its origin).
	From string
	// Key is a broadcast's key, if it had one (see Broadcast), or a
	// query's name.
	Key string
	// Payload is the application's data; it is the receiver's to keep.
	Payload []byte

	query *query.Query // for MessageQuery
	node  *Node
}

// Errors of the message calls.
var (
	// ErrNotAlive: the destination of SendTo or SendReliable is not a
	// member we know as alive.
	ErrNotAlive = errors.New("membership: not an alive member")
	// ErrMessageTooLarge: the payload is above the call's limit; the
	// error says the limit.
	ErrMessageTooLarge = errors.New("membership: message too large")
	// ErrNotDelivered: the receiver of a reliable message did not take
	// it (its application did not make room in time); the error says why.
	ErrNotDelivered = errors.New("membership: message not delivered")
)

// DefaultMessageBuffer is the capacity of the Messages channel.
const DefaultMessageBuffer = 1024

// DefaultMaxReliableMessage is the largest payload SendReliable sends.
const DefaultMaxReliableMessage = 1 << 20

// WithMessageBuffer sets the capacity of the Messages channel (at least
// 1). Default DefaultMessageBuffer (1024).
func WithMessageBuffer(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithMessageBuffer: %d: the channel needs room for at least 1 message", n)
		}
		c.messageBuffer = n
		return nil
	}
}

// Messages returns the channel of application messages received:
// broadcasts, datagrams and reliable messages. It is bounded (see
// WithMessageBuffer) and closed by Shutdown.
func (n *Node) Messages() <-chan Message { return n.messages }

// MessagesDropped returns how many received broadcasts and datagrams were
// dropped because the Messages channel was full.
func (n *Node) MessagesDropped() uint64 { return n.msgDropped.Load() }

// offerMessage hands a message to the application without waiting, or
// drops and counts it.
func (n *Node) offerMessage(m Message) bool {
	select {
	case n.messages <- m:
		n.met.UserMessage(m.Kind.String(), metrics.ResultDelivered)
		return true
	default:
		n.msgDropped.Add(1)
		n.met.UserMessage(m.Kind.String(), metrics.ResultDropped)
		if ok, suppressed := n.limiter.allow("messages", time.Now()); ok {
			n.log.Warn("message channel full: application messages dropped", "kind", m.Kind.String(), "from", m.From, "suppressed", suppressed, "dropped_total", n.msgDropped.Load())
		}
		return false
	}
}

// aliveAddr returns the address of the named member if we know it as
// alive (a suspect member counts: it may well be).
func (n *Node) aliveAddr(name string) (netip.AddrPort, error) {
	var m swim.Member
	var ok bool
	n.do(func() { m, ok = n.core.Member(name) })
	switch {
	case !ok:
		return netip.AddrPort{}, fmt.Errorf("%w: %q is not a member we know", ErrNotAlive, name)
	case m.State != swim.StateAlive && m.State != swim.StateSuspect:
		return netip.AddrPort{}, fmt.Errorf("%w: %q is %v", ErrNotAlive, name, m.State)
	}
	return m.Addr, nil
}

// Acknowledgement codes of a reliable message.
const (
	ackDelivered = 0 // on the receiver's Messages channel
	ackFull      = 1 // the receiver's application did not make room in time
	ackTooLarge  = 2 // above the receiver's limit
)

// SendReliable sends payload to the named member over a sealed stream and
// returns once the member's node has put it on its Messages channel, or
// with an error that says why not: the member is not alive (ErrNotAlive),
// the payload is above DefaultMaxReliableMessage (ErrMessageTooLarge), the
// member's application did not make room in time (ErrNotDelivered), or the
// stream failed (the member died, a network error, ctx ended). A failed
// send may or may not have arrived; a nil error means it did. Sends to one
// member run one at a time, so they arrive in the order they were made.
func (n *Node) SendReliable(ctx context.Context, name string, payload []byte) error {
	if !n.running() {
		return ErrShutdown
	}
	if len(payload) > DefaultMaxReliableMessage {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMessageTooLarge, len(payload), DefaultMaxReliableMessage)
	}
	addr, err := n.aliveAddr(name)
	if err != nil {
		return fmt.Errorf("membership: send to %q: %w", name, err)
	}
	lock := n.sendLock(name)
	lock.Lock()
	defer lock.Unlock()
	err = n.sendReliable(ctx, addr, payload)
	result := metrics.ResultOK
	if err != nil {
		result = metrics.ResultError
		err = fmt.Errorf("membership: send to %q at %v: %w", name, addr, err)
	}
	n.met.UserMessage(MessageReliable.String()+"_sent", result)
	return err
}

// sendLock returns the lock that runs reliable sends to name one at a time.
func (n *Node) sendLock(name string) *sync.Mutex {
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	l, ok := n.sendLocks[name]
	if !ok {
		if len(n.sendLocks) > 4096 {
			clear(n.sendLocks) // held locks stay with their holders
		}
		l = new(sync.Mutex)
		n.sendLocks[name] = l
	}
	return l
}

func (n *Node) sendReliable(ctx context.Context, addr netip.AddrPort, payload []byte) error {
	st, done, err := n.openStream(ctx, addr)
	if err != nil {
		return err
	}
	defer done()
	// The first record names the sender; the payload follows in as many
	// records as it takes.
	name := n.cfg.name
	head := append([]byte{recordMessage, byte(len(name))}, name...)
	k := min(len(payload), envelope.MaxRecord-len(head))
	if err := st.WriteRecord(append(head, payload[:k]...), false); err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	if err := writeChunks(st, recordMessage, payload[k:]); err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	if err := st.WriteRecord(nil, true); err != nil {
		return n.ctxErr(ctx, hintRefused(err))
	}
	ack, _, err := st.ReadRecord()
	if err != nil {
		// It may or may not have arrived: the member may have died
		// before answering, or not be able to open our records.
		return n.ctxErr(ctx, fmt.Errorf("no acknowledgement: %w", err))
	}
	if len(ack) != 2 || ack[0] != recordMessageAck {
		return fmt.Errorf("%w: unexpected answer", ErrNotDelivered)
	}
	switch ack[1] {
	case ackDelivered:
		return nil
	case ackFull:
		return fmt.Errorf("%w: the member's message channel stayed full", ErrNotDelivered)
	case ackTooLarge:
		return fmt.Errorf("%w: above the member's limit", ErrMessageTooLarge)
	}
	return fmt.Errorf("%w: answer code %d", ErrNotDelivered, ack[1])
}

// serveMessage receives a reliable message whose first record is first,
// delivers it and answers with an acknowledgement.
func (n *Node) serveMessage(st *envelope.Stream, first []byte, fin bool) error {
	if len(first) < 2 || len(first) < 2+int(first[1]) || first[1] == 0 {
		return fmt.Errorf("%w: reliable message header", envelope.ErrMalformed)
	}
	from := string(first[2 : 2+int(first[1])])
	payload := append([]byte(nil), first[2+int(first[1]):]...)
	code := byte(ackDelivered)
	for !fin {
		data, f, err := st.ReadRecord()
		if err != nil {
			return err
		}
		fin = f
		switch {
		case fin && len(data) == 0:
		case len(data) > 0 && data[0] == recordMessage:
			if len(payload)+len(data)-1 > DefaultMaxReliableMessage {
				code = ackTooLarge
				payload = nil
			} else if code == ackDelivered {
				payload = append(payload, data[1:]...)
			}
		default:
			return fmt.Errorf("%w: record in a reliable message", envelope.ErrMalformed)
		}
	}
	if code == ackDelivered {
		m := Message{Kind: MessageReliable, From: from, Payload: payload}
		t := time.NewTimer(n.cfg.streamTimeout / 2)
		n.msgWaiting.Add(1)
		select {
		case n.messages <- m:
			n.met.UserMessage(m.Kind.String(), metrics.ResultDelivered)
		case <-t.C:
			code = ackFull
			n.met.UserMessage(m.Kind.String(), metrics.ResultDropped)
		case <-n.stop:
			t.Stop()
			n.msgWaiting.Add(-1)
			return ErrShutdown
		}
		t.Stop()
		n.msgWaiting.Add(-1)
	}
	if err := st.WriteRecord([]byte{recordMessageAck, code}, true); err != nil {
		return err
	}
	return nil
}
