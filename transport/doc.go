// Package transport moves bytes between members: UDP datagrams and TCP
// streams on one advertised address, with bind and advertise addresses
// resolved through go-sockaddr templates, and an in-memory network with fault
// injection (loss, delay, duplication, reordering, partitions, one-way links)
// for tests and simulation.
package transport
