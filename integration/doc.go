// Package integration holds multi-process and multi-host tests: real
// binaries, real UDP and TCP, with members killed, paused and partitioned.
//
// The tests build examples/agent (without the race detector, which affects
// only the test binary) and run it as separate processes, reading each
// agent's JSON event lines into one synchronized log and waiting on
// conditions over it with deadlines. TestAgents and TestPartitionNetns run
// it on loopback with ProfileLocal; TestDocker runs it in containers.
//
//	go test ./integration/            # TestAgents: five agents on 127.0.0.1
//	go test -short ./integration/     # skips them
//
// TestAgents joins five agents and then, on the same cluster: kill -9 of
// one (every survivor reports it failed), SIGSTOP of one past the suspicion
// timeout and SIGCONT (failed, then alive again at a higher incarnation
// everywhere), SIGTERM of one (reported left, never failed; exit 0), the
// killed one restarted under its name on a new port (back everywhere), and
// all along two outsiders, one with another key and one with another label,
// that no member ever reports. It logs the detection times it measured
// (go test -v).
//
// TestPartitionNetns runs only with MEMBERSHIP_NETNS=1, as root, on Linux:
// it creates a network namespace of its own, runs four agents on
// 127.0.0.1–127.0.0.4 inside it, splits them in halves with iptables rules
// inside the namespace (so nothing outside it is touched), checks that each
// half reports the other failed, heals the split and checks that everyone
// is alive everywhere again; the namespace is deleted at the end.
//
//	sudo MEMBERSHIP_NETNS=1 go test -run Netns -v ./integration/
//
// TestStatsdExporter runs only with MEMBERSHIP_STATSD_EXPORTER set to a
// prometheus/statsd_exporter binary: agents send their metrics to it in
// the DogStatsD format while the test drives the conditions the rarer
// metrics need (outsiders with other keys, a duplicate name, an oversized
// datagram, a pause, a kill, a leave, an event subscriber too slow), then
// checks that every metric of docs/metrics.md arrives in its /metrics
// with the documented name, type and labels, and nothing undocumented.
//
//	go install github.com/prometheus/statsd_exporter@v0.31.0
//	MEMBERSHIP_STATSD_EXPORTER=$(go env GOPATH)/bin/statsd_exporter go test -run StatsdExporter -v ./integration/
//
// TestWireCapture runs only with MEMBERSHIP_WIRE=1, as root, on Linux: it
// captures the loopback interface with a raw packet socket while three
// agents join, change a payload and leave, and checks that no member
// name, payload, label or address appears in any datagram or TCP stream;
// a plaintext control run of the same cluster must show them, so that the
// check can fail.
//
//	sudo MEMBERSHIP_WIRE=1 go test -run WireCapture -v ./integration/
//
// TestDocker runs only with MEMBERSHIP_DOCKER=1 and a docker CLI that
// reaches a daemon (root, or the docker group), on Linux; without them it
// skips and says how to run it. It builds the agent with CGO_ENABLED=0 and
// the image of deploy/docker/Dockerfile (FROM scratch: nothing is pulled,
// no registry is needed), then runs five scenarios in parallel, each on
// user-defined bridge networks of its own, with ProfileLAN:
//
//   - JoinKillOutsiders: ten members join through one seed and converge;
//     two outsiders, one with another key and one with another label, try
//     to join and to be added both ways; docker kill of one member: every
//     survivor reports it failed within the bound the configuration
//     predicts, no other member is ever reported anything but alive, and
//     no outsider ever appears in any event or view.
//   - Pause: docker pause of one of five members until the first
//     suspicion (never longer than the shortest suspicion timeout): nobody
//     is declared dead; docker pause until everyone reports it failed, then
//     docker unpause: it refutes, and is alive everywhere as the same
//     process.
//   - Partition: ten members, five advertising on network A and five on B,
//     each also attached to the other network; docker network disconnect
//     of every cross link splits them 5/5 (each half still talks within
//     itself); each half reports the other failed and never its own; after
//     at least 30 s, docker network connect heals it and everyone is alive
//     everywhere within a bound.
//   - RollingRestart: docker stop and docker start of each of ten members
//     in turn, rejoining by container name through Docker's DNS, while a
//     sampler asks every running member for its view: no running member is
//     ever missing from the majority's view, and nobody is reported failed.
//   - Script: deploy/docker/cluster.sh up 5 converges and down removes
//     everything it made.
//
// Names carry the test's process id, so parallel runs do not collide; all
// containers, networks, volumes and the image are removed at the end, and
// what a killed run left behind is removed by the next one. The bounds come
// from swim.DefaultConfig (ProfileLAN's protocol values); each scenario
// logs them next to what it measured (docs/testing.md has the figures).
//
//	sudo MEMBERSHIP_DOCKER=1 go test -count=1 -parallel 8 -run TestDocker -v ./integration/
package integration
