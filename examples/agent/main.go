// Command agent runs one membership node and prints what it sees as JSON
// lines on stdout, one object per line. The integration tests drive it as a
// real process; it is also a small tool to try a cluster by hand.
//
// Make a key file once and share it with every member. Keep it (and the
// built binary, if you build one) out of the repository:
//
//	go run ./examples/agent -keygen -keyfile /tmp/cluster.key
//
// -keygen refuses to replace an existing key file unless -force is given;
// the file is written with mode 0600, through a temporary file and a
// rename, so a reader never sees half a key file.
//
// Then start members, each on its own port, joining any running one:
//
//	go run ./examples/agent -name a -bind 127.0.0.1:7946 -keyfile /tmp/cluster.key -profile local
//	go run ./examples/agent -name b -bind 127.0.0.1:7947 -keyfile /tmp/cluster.key -profile local -join 127.0.0.1:7946
//
// The flags:
//
//	-name NAME          member name, unique in the cluster (default: the host name)
//	-bind ADDR          address to bind UDP and TCP: ip:port or a go-sockaddr
//	                    template; port 0 picks a free port (default 127.0.0.1:0)
//	-advertise ADDR     address others reach this node at (default: the bound one)
//	-join SEEDS         comma-separated seed addresses to join
//	-join-timeout D     how long joining the seeds may take (default 10s)
//	-keyfile PATH       keyring file (keyring.Load format), saved again after every key change; with -keygen, the file to write
//	-plaintext          run without encryption, on purpose (instead of -keyfile)
//	-label LABEL        cluster label, authenticated in every datagram
//	-payload TEXT       this member's payload
//	-profile P          protocol timings: lan, wan or local (default lan)
//	-statsd HOST:PORT   send metrics to this statsd address (UDP)
//	-statsd-format F    dogstatsd (default: labels as tags, for statsd_exporter,
//	                    Datadog, Telegraf) or statsd (label values glued into
//	                    the name, for servers that read no tags)
//	-leave-timeout D    how long a graceful leave may take (default 5s)
//	-log-level L        stderr log level: debug, info, warn or error (default info)
//	-keygen             print a new base64 key and exit; with -keyfile, write a key file
//	-suite S            cipher suite of -keygen: xchacha20-poly1305 (default) or aes-gcm
//	-force              with -keygen -keyfile, replace an existing key file
//
// The first line is {"event":"ready",...} with the address others reach the
// node at (the real port when bound to port 0). Every membership event
// follows as one line: time, event (joined, updated, suspected, alive,
// failed, left), name, addr, state, incarnation and payload. On SIGINT,
// SIGTERM or SIGHUP the agent leaves gracefully (bounded by -leave-timeout;
// a second signal cuts it short), prints {"event":"leave",...} with the
// signal, shuts down and exits 0; it exits non-zero on any error. Under
// nohup, SIGHUP stays ignored.
//
// While it runs, the agent reads commands from stdin, one per line:
// "members" prints {"event":"members","members":[...]} with the node's
// current view; "payload TEXT" replaces the node's payload, then prints
// {"event":"payload",...} with the node as it now is, or with an error
// (such as a payload over the cap); "add ADDR" probes ADDR to add it as
// a member, then prints {"event":"add",...} with an error if it did not
// answer; and "keys list", "keys install KEY", "keys use KEY", "keys remove
// KEY" and "keys rotate KEY" (KEY in base64, as -keygen prints it) act on
// every alive member's keyring and print {"event":"keys","op":...,
// "report":{"asked":N,"answered":N,"missing":[...],"errors":{...},
// "keys":{fingerprint:holders},"primary":{fingerprint:users}}}, with an
// error when not every member answered without one, and "done" when a
// rotation finished. The agent never prints or logs key material, except
// the new key that -keygen without -keyfile prints on purpose.
//
// In Docker: deploy/docker/Dockerfile puts the agent, built with
// CGO_ENABLED=0, in an image FROM scratch (it builds without a registry),
// and deploy/docker/cluster.sh runs a cluster of it on a bridge network:
//
//	deploy/docker/cluster.sh build && deploy/docker/cluster.sh up 5
//	docker logs -f membership-3
//	deploy/docker/cluster.sh down
//
// docker stop sends SIGTERM, so the member leaves gracefully; docker kill
// is a crash.
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/meshward/membership"
	"github.com/meshward/membership/keyring"
	"github.com/meshward/membership/metrics"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	// SIGHUP (the terminal went away, or a supervisor's nudge) would kill
	// the agent by Go's default, and the others would see it fail: leave
	// gracefully instead. Under nohup it stays ignored, as asked: Notify
	// would undo that.
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(sigs, syscall.SIGHUP)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, sigs))
}

// options are the agent's flags.
type options struct {
	name         string
	bind         string
	advertise    string
	join         string
	keyfile      string
	plaintext    bool
	label        string
	statsd       string
	statsdFormat string
	profile      string
	payload      string
	keygen       bool
	suite        string
	force        bool
	leaveTimeout time.Duration
	joinTimeout  time.Duration
	logLevel     string
}

// newFlagSet defines the agent's flags, writing them into o.
func newFlagSet(o *options) *flag.FlagSet {
	set := flag.NewFlagSet("agent", flag.ContinueOnError)
	set.StringVar(&o.name, "name", "", "member name, unique in the cluster (default: the host name)")
	set.StringVar(&o.bind, "bind", "127.0.0.1:0", "address to bind UDP and TCP: ip:port or a go-sockaddr template; port 0 picks a free port")
	set.StringVar(&o.advertise, "advertise", "", "address others reach this node at (default: the bound address)")
	set.StringVar(&o.join, "join", "", "comma-separated seed addresses to join")
	set.StringVar(&o.keyfile, "keyfile", "", "keyring file (keyring.Load format), saved again after every key change; with -keygen, the file to write")
	set.BoolVar(&o.plaintext, "plaintext", false, "run without encryption, on purpose (instead of -keyfile)")
	set.StringVar(&o.label, "label", "", "cluster label, authenticated in every datagram")
	set.StringVar(&o.statsd, "statsd", "", "send metrics to this statsd host:port (UDP)")
	set.StringVar(&o.statsdFormat, "statsd-format", "dogstatsd", "metric line format of -statsd: dogstatsd (labels as tags) or statsd (label values in the name)")
	set.StringVar(&o.profile, "profile", "lan", "protocol timings: lan, wan or local")
	set.StringVar(&o.payload, "payload", "", "this member's payload")
	set.BoolVar(&o.keygen, "keygen", false, "print a new base64 key and exit; with -keyfile, write a key file instead")
	set.StringVar(&o.suite, "suite", keyring.XChaCha20Poly1305.String(), "cipher suite of -keygen: xchacha20-poly1305 or aes-gcm")
	set.DurationVar(&o.leaveTimeout, "leave-timeout", 5*time.Second, "how long a graceful leave may take on SIGINT/SIGTERM")
	set.DurationVar(&o.joinTimeout, "join-timeout", 10*time.Second, "how long joining the seeds may take")
	set.BoolVar(&o.force, "force", false, "with -keygen -keyfile, replace an existing key file")
	set.StringVar(&o.logLevel, "log-level", "info", "stderr log level: debug, info, warn or error")
	return set
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	set := newFlagSet(&o)
	set.SetOutput(stderr)
	if err := set.Parse(args); err != nil {
		return nil, err
	}
	if set.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", set.Args())
	}
	if o.force && (!o.keygen || o.keyfile == "") {
		return nil, errors.New("-force only applies to -keygen -keyfile")
	}
	return &o, nil
}

// run is the whole program, with its environment passed in so that tests
// can drive it. It returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 2
	}
	if o.keygen {
		if err := keygen(o, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "agent: keygen: %v\n", err)
			return 1
		}
		return 0
	}
	if err := agent(o, stdin, stdout, stderr, sigs); err != nil {
		fmt.Fprintf(stderr, "agent: %v\n", err)
		return 1
	}
	return 0
}

// keygen prints a new key, or writes it as a key file. It does not replace
// an existing file unless -force: that would lock this member out of a
// cluster whose key it was. The check comes before the write, so two
// keygens racing for one path can both pass it; the write itself is atomic.
func keygen(o *options, stdout, stderr io.Writer) error {
	suite, err := keyring.ParseSuite(o.suite)
	if err != nil {
		return err
	}
	if o.keyfile != "" && !o.force {
		// Lstat: a symlink, even a dangling one, counts as existing.
		_, err := os.Lstat(o.keyfile)
		if err == nil {
			return fmt.Errorf("%s already exists: pass -force to replace it", o.keyfile)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("-keyfile: %w", err)
		}
	}
	key, err := keyring.Generate(suite)
	if err != nil {
		return err
	}
	if o.keyfile == "" {
		_, err := fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
		return err
	}
	ring, err := keyring.New(key, keyring.WithSuite(suite))
	if err != nil {
		return err
	}
	if err := ring.Save(o.keyfile); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "agent: wrote a %s key (fingerprint %x) to %s\n", suite, keyring.Fingerprint(key), o.keyfile)
	return nil
}

func parseProfile(s string) (membership.Profile, error) {
	for _, p := range []membership.Profile{membership.ProfileLAN, membership.ProfileWAN, membership.ProfileLocal} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("-profile %q: want lan, wan or local", s)
}

// nodeOptions turns the flags into membership options. The returned closer
// stops the statsd sink, if any.
func nodeOptions(o *options, log *slog.Logger) ([]membership.Option, func(), error) {
	profile, err := parseProfile(o.profile)
	if err != nil {
		return nil, nil, err
	}
	opts := []membership.Option{
		membership.WithBindAddr(o.bind),
		membership.WithProfile(profile),
		membership.WithLogger(log),
		membership.WithLabel(o.label),
	}
	if o.name != "" {
		opts = append(opts, membership.WithName(o.name))
	}
	if o.advertise != "" {
		opts = append(opts, membership.WithAdvertiseAddr(o.advertise))
	}
	if o.payload != "" {
		opts = append(opts, membership.WithPayload([]byte(o.payload)))
	}
	switch {
	case o.keyfile != "" && o.plaintext:
		return nil, nil, errors.New("-keyfile and -plaintext contradict each other")
	case o.keyfile != "":
		// The node loads the keyring from the file and saves it after
		// every change, so a rotation ("keys rotate") survives a restart.
		opts = append(opts, membership.WithKeyringFile(o.keyfile))
	case o.plaintext:
		opts = append(opts, membership.WithoutEncryption())
	default:
		return nil, nil, errors.New("no -keyfile: pass one (make it with -keygen -keyfile PATH), or -plaintext to run unencrypted on purpose")
	}
	closer := func() {}
	if o.statsd != "" {
		sink, err := statsdSink(o.statsd, o.statsdFormat)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, membership.WithMetrics(sink))
		closer = sink.Shutdown
	}
	return opts, closer, nil
}

// statsdSink returns the sink of -statsd in the -statsd-format asked for.
func statsdSink(addr, format string) (metrics.ShutdownSink, error) {
	var (
		sink metrics.ShutdownSink
		err  error
	)
	switch format {
	case "dogstatsd":
		sink, err = metrics.NewDogStatsd(addr)
	case "statsd":
		sink, err = metrics.NewStatsd(addr)
	default:
		return nil, fmt.Errorf("-statsd-format %q: want dogstatsd or statsd", format)
	}
	if err != nil {
		return nil, fmt.Errorf("-statsd: %w", err)
	}
	return sink, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("-log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// agent runs the node until a signal, then leaves and shuts down.
func agent(o *options, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal) error {
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	opts, closeMetrics, err := nodeOptions(o, log)
	if err != nil {
		return err
	}
	defer closeMetrics()
	node, err := membership.New(opts...)
	if err != nil {
		return err
	}
	out := newPrinter(stdout)
	me := node.Myself()
	out.print(line{Event: "ready", member: memberOf(me)})

	// Events are printed by one goroutine until Shutdown closes the channel.
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		for ev := range node.Events() {
			out.print(eventLine(ev))
		}
	}()
	go commands(node, stdin, out, log)

	var sig os.Signal
	if seeds := splitSeeds(o.join); len(seeds) > 0 {
		// A signal while joining cuts the join short.
		ctx, cancel := context.WithTimeout(context.Background(), o.joinTimeout)
		joined := make(chan line, 1)
		go func() {
			n, err := node.Join(ctx, seeds...)
			l := line{Event: "join", Answered: n}
			if err != nil {
				// The node keeps running: a member that cannot reach any
				// seed now can still be reached by others later.
				l.Error = err.Error()
				log.Error("join failed", "seeds", seeds, "err", err)
			}
			joined <- l
		}()
		select {
		case l := <-joined:
			out.print(l)
		case sig = <-sigs:
			cancel()
			out.print(<-joined)
		}
		cancel()
	}

	if sig == nil {
		sig = <-sigs
	}
	log.Info("leaving", "signal", sig.String(), "timeout", o.leaveTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), o.leaveTimeout)
	go func() {
		select {
		case <-sigs: // a second signal: stop waiting
			cancel()
		case <-ctx.Done():
		}
	}()
	leaveErr := node.Leave(ctx)
	cancel()
	l := line{Event: "leave", Signal: sig.String()}
	if leaveErr != nil {
		l.Error = leaveErr.Error()
		log.Warn("graceful leave incomplete", "err", leaveErr)
	}
	out.print(l)
	shutdownErr := node.Shutdown()
	<-eventsDone
	out.print(line{Event: "shutdown"})
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return nil
}

func splitSeeds(s string) []string {
	var seeds []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			seeds = append(seeds, f)
		}
	}
	return seeds
}

// commands serves stdin commands until stdin ends.
func commands(node *membership.Node, stdin io.Reader, out *printer, log *slog.Logger) {
	if stdin == nil {
		return
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "":
		case "members":
			var ms []member
			for _, m := range node.Members() {
				ms = append(ms, memberOf(m))
			}
			out.print(line{Event: "members", Members: ms})
		case "payload":
			if err := node.SetPayload([]byte(arg)); err != nil {
				out.print(line{Event: "payload", Error: err.Error()})
				continue
			}
			out.print(line{Event: "payload", member: memberOf(node.Myself())})
		case "add":
			// AddMember probes the address; its ack brings it into our
			// view. The probe is bounded by the node's own timeouts.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := node.AddMember(ctx, arg)
			cancel()
			l := line{Event: "add", member: member{Addr: arg}}
			if err != nil {
				l.Error = err.Error()
			}
			out.print(l)
		case "keys":
			out.print(keysCommand(node, arg))
		default:
			log.Warn("unknown command: want members, payload TEXT, add ADDR or keys list|install|use|remove|rotate [KEY]", "command", cmd)
		}
	}
}

// keysCommand runs "keys list", or "keys install|use|remove|rotate KEY"
// with KEY in base64, on every alive member, and returns the report line.
func keysCommand(node *membership.Node, arg string) line {
	op, keyText, _ := strings.Cut(strings.TrimSpace(arg), " ")
	l := line{Event: "keys", Op: op}
	var key []byte
	if op != "list" {
		k, err := keyring.ParseKey(keyText)
		if err != nil {
			l.Error = err.Error()
			return l
		}
		key = k
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var r *membership.KeyReport
	var err error
	switch op {
	case "list":
		r, err = node.ListKeys(ctx)
	case "install":
		r, err = node.InstallKey(ctx, key)
	case "use":
		r, err = node.UseKey(ctx, key)
	case "remove":
		r, err = node.RemoveKey(ctx, key)
	case "rotate":
		var rep *membership.RotateReport
		rep, err = node.RotateKey(ctx, key)
		if rep != nil && len(rep.Steps) > 0 {
			r = rep.Steps[len(rep.Steps)-1]
			l.Done = rep.Done
		}
	default:
		l.Error = "want keys list, or keys install|use|remove|rotate KEY (base64)"
		return l
	}
	if err != nil {
		l.Error = err.Error()
	}
	if r != nil {
		l.Report = &keysReport{Asked: len(r.Asked), Answered: len(r.Answered), Missing: r.Missing, Errors: r.Errors, Keys: r.Keys, Primary: r.Primary}
	}
	return l
}

// keysReport is a key operation's report as printed: like consul keyring
// -list, how many of the members asked hold each key (by fingerprint) and
// use it as primary.
type keysReport struct {
	Asked    int               `json:"asked"`
	Answered int               `json:"answered"`
	Missing  []string          `json:"missing,omitempty"`
	Errors   map[string]string `json:"errors,omitempty"`
	Keys     map[string]int    `json:"keys,omitempty"`
	Primary  map[string]int    `json:"primary,omitempty"`
}

// line is one JSON line of output. Fields are omitted when they do not
// apply to the kind of line.
type line struct {
	Time  string `json:"time"`
	Event string `json:"event"`
	member
	Answered int         `json:"answered,omitempty"`
	Signal   string      `json:"signal,omitempty"` // on the leave line: what made the agent leave
	Error    string      `json:"error,omitempty"`
	Members  []member    `json:"members,omitempty"`
	Op       string      `json:"op,omitempty"`   // keys: the operation
	Done     bool        `json:"done,omitempty"` // keys rotate: finished
	Report   *keysReport `json:"report,omitempty"`
}

// member is a member as printed. The payload is printed as text when it is
// valid UTF-8, else in base64 as payload_base64.
type member struct {
	Name          string `json:"name,omitempty"`
	Addr          string `json:"addr,omitempty"`
	State         string `json:"state,omitempty"`
	Incarnation   uint64 `json:"incarnation,omitempty"`
	Payload       string `json:"payload,omitempty"`
	PayloadBase64 string `json:"payload_base64,omitempty"`
}

func memberOf(m membership.Member) member {
	pm := member{
		Name:        m.Name,
		Addr:        m.Addr.String(),
		State:       m.State.String(),
		Incarnation: m.Incarnation,
	}
	if utf8.Valid(m.Payload) {
		pm.Payload = string(m.Payload)
	} else {
		pm.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	return pm
}

func eventLine(ev membership.Event) line {
	return line{Event: ev.Kind.String(), member: memberOf(ev.Member)}
}

// printer writes whole lines to stdout, one at a time.
type printer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newPrinter(w io.Writer) *printer { return &printer{enc: json.NewEncoder(w)} }

func (p *printer) print(l line) {
	l.Time = time.Now().UTC().Format(time.RFC3339Nano)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Encode writes the line with a single Write, so a reader never sees
	// half a line; an error (stdout closed) leaves nothing to report to.
	_ = p.enc.Encode(l)
}
