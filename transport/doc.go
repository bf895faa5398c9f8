// Package transport moves bytes between members: UDP datagrams and TCP
// streams on one advertised address, with bind and advertise addresses
// resolved through go-sockaddr templates, and an in-memory network with fault
// injection (loss, delay, duplication, reordering, partitions, one-way links)
// for tests.
//
// Transport is the interface the runtime codes against. It is shaped for a
// runtime in which one goroutine owns the protocol state (SWIM §4's failure
// detector and dissemination component) and selects over Packets, Streams
// and its own timers: received datagrams arrive as Packet values holding a
// pooled buffer that the consumer hands back with Release, so reading does
// not allocate in steady state; queues are bounded, and what does not fit is
// dropped and counted in Stats, never buffered without limit.
//
// NewNet is the real implementation (UDP and TCP bound on the same port,
// IPv4 and IPv6). NewMemNetwork builds an in-memory network whose endpoints
// implement the same interface, for runtime tests in real time. The package
// knows nothing of the wire format or encryption: it never looks inside the
// bytes it carries.
package transport
