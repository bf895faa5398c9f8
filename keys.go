package membership

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meshward/membership/internal/query"
	"github.com/meshward/membership/keyring"
)

// Cluster key management (Serf's and Consul's keyring commands, done our
// way): InstallKey, UseKey, RemoveKey and ListKeys act on every alive
// member through a query, and each returns a report of who was asked, who
// answered, and what each said. Requests and answers travel sealed by the
// current keyring like every datagram, so only a holder of a current key
// can ask, and key material never leaves the authenticated envelope; it is
// never logged. Each step is idempotent, so running it again after a
// partial failure is the recovery. RotateKey chains them safely.

// keysQuery is the reserved query name of key operations; queries whose
// name starts with "_membership/" never reach the application.
const keysQuery = "_membership/keys"

// internalPrefix starts the names of the runtime's own queries.
const internalPrefix = "_membership/"

// keyRequest is the body of a key operation query.
type keyRequest struct {
	Op  string // "install", "use", "remove", "list"
	Key []byte
}

// keyAnswer is a member's answer.
type keyAnswer struct {
	Err  string
	Keys []keyHeld
}

// keyHeld is one key a member holds, by fingerprint.
type keyHeld struct {
	Fingerprint string
	Primary     bool
}

// Errors of key operations.
var (
	// ErrKeyOpIncomplete: not every alive member answered a key
	// operation without error; the report says who.
	ErrKeyOpIncomplete = errors.New("membership: key operation did not reach every alive member")
	// ErrNoKeyring: the node runs without encryption.
	ErrNoKeyring = errors.New("membership: the node runs without a keyring")
)

// KeyReport says what a cluster-wide key operation found.
type KeyReport struct {
	// Op is "install", "use", "remove" or "list".
	Op string
	// Asked lists the members asked: every alive or suspect member, this
	// one included (a suspect member may be running, and a key operation
	// that went on without it could cut it off).
	Asked []string
	// Answered lists the members that answered, with or without error.
	Answered []string
	// Errors maps a member to the error it answered with (for example,
	// refusing to remove its primary key).
	Errors map[string]string
	// Missing lists the members asked that did not answer in time.
	Missing []string
	// Keys maps a key fingerprint (hex) to how many answering members
	// hold it, and Primary to how many use it as their primary key.
	Keys, Primary map[string]int
	// Members maps each answering member to the fingerprints it holds,
	// its primary key first.
	Members map[string][]string
}

// Complete reports whether every member asked answered without error.
func (r *KeyReport) Complete() bool { return len(r.Missing) == 0 && len(r.Errors) == 0 }

// String summarises the report on a few lines, like `consul keyring -list`.
func (r *KeyReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d members answered", r.Op, len(r.Answered), len(r.Asked))
	if len(r.Missing) > 0 {
		fmt.Fprintf(&b, "; missing: %s", strings.Join(r.Missing, ", "))
	}
	for _, name := range sortedKeys(r.Errors) {
		fmt.Fprintf(&b, "\n  %s: %s", name, r.Errors[name])
	}
	for _, fp := range sortedKeys(r.Keys) {
		fmt.Fprintf(&b, "\n  key %s: held by %d/%d, primary on %d", fp, r.Keys[fp], len(r.Answered), r.Primary[fp])
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// err returns nil when the report is complete, else an error naming the
// members that are missing or failed.
func (r *KeyReport) err() error {
	if r.Complete() {
		return nil
	}
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, "no answer from "+strings.Join(r.Missing, ", "))
	}
	for _, name := range sortedKeys(r.Errors) {
		parts = append(parts, name+": "+r.Errors[name])
	}
	return fmt.Errorf("%w: %s: %s", ErrKeyOpIncomplete, r.Op, strings.Join(parts, "; "))
}

// InstallKey installs key on every alive member: they can then open
// datagrams sealed with it, and still seal with their primary key.
func (n *Node) InstallKey(ctx context.Context, key []byte) (*KeyReport, error) {
	return n.keyOp(ctx, "install", key)
}

// UseKey makes key the primary key of every alive member. A member that
// does not hold it refuses (install it first).
func (n *Node) UseKey(ctx context.Context, key []byte) (*KeyReport, error) {
	return n.keyOp(ctx, "use", key)
}

// RemoveKey removes key from every alive member. A member whose primary it
// is refuses (use another first).
func (n *Node) RemoveKey(ctx context.Context, key []byte) (*KeyReport, error) {
	return n.keyOp(ctx, "remove", key)
}

// ListKeys asks every alive member which keys it holds.
func (n *Node) ListKeys(ctx context.Context) (*KeyReport, error) {
	return n.keyOp(ctx, "list", nil)
}

// keyOp runs one key operation as a query and builds its report. The error
// is nil only when every alive member answered without error.
func (n *Node) keyOp(ctx context.Context, op string, key []byte) (*KeyReport, error) {
	if n.ring == nil {
		return nil, ErrNoKeyring
	}
	if key != nil {
		// Check it here first, so that a bad key fails fast and whole.
		if _, err := keyring.New(key, keyring.WithSuite(n.ring.Suite())); err != nil {
			return nil, fmt.Errorf("membership: %s key: %w", op, err)
		}
	}
	body, err := query.Encode(nil, &keyRequest{Op: op, Key: key})
	if err != nil {
		return nil, err
	}
	res, err := n.query(ctx, keysQuery, body, nil)
	if err != nil {
		return nil, fmt.Errorf("membership: %s key: %w", op, err)
	}
	r := &KeyReport{Op: op, Errors: map[string]string{}, Keys: map[string]int{}, Primary: map[string]int{}, Members: map[string][]string{}}
	for resp := range res.Responses() {
		r.Answered = append(r.Answered, resp.From)
		var a keyAnswer
		if err := query.Decode(resp.Payload, &a); err != nil {
			r.Errors[resp.From] = "unreadable answer: " + err.Error()
			continue
		}
		if a.Err != "" {
			r.Errors[resp.From] = a.Err
		}
		for _, k := range a.Keys {
			r.Keys[k.Fingerprint]++
			if k.Primary {
				r.Primary[k.Fingerprint]++
				r.Members[resp.From] = append([]string{k.Fingerprint}, r.Members[resp.From]...)
			} else {
				r.Members[resp.From] = append(r.Members[resp.From], k.Fingerprint)
			}
		}
	}
	r.Missing = res.Missing()
	r.Asked = append(slices.Clone(r.Answered), r.Missing...)
	slices.Sort(r.Asked)
	slices.Sort(r.Answered)
	return r, r.err()
}

// onKeyQuery carries out a key operation another member (or we) asked
// for, and answers. It is called on the loop goroutine and does the work on
// another, since a keyring change saves the key file (WithKeyringFile) and
// waits for the disk.
func (n *Node) onKeyQuery(q *query.Query) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		b, err := query.Encode(nil, n.keyAnswer(q))
		if err == nil {
			n.do(func() { err = n.respond(q, b) })
		}
		if err != nil {
			n.log.Warn("cannot answer a key operation", "asked_by", q.Origin, "err", err)
		}
	}()
}

// keyAnswer carries out a key operation and says how it went.
func (n *Node) keyAnswer(q *query.Query) *keyAnswer {
	var a keyAnswer
	var req keyRequest
	switch {
	case n.ring == nil:
		a.Err = "no keyring: this member runs without encryption"
	case query.Decode(q.Payload, &req) != nil:
		a.Err = "unreadable request"
	default:
		var err error
		switch req.Op {
		case "install":
			err = n.ring.Install(req.Key)
		case "use":
			err = n.ring.Use(req.Key)
		case "remove":
			err = n.ring.Remove(req.Key)
		case "list":
		default:
			err = fmt.Errorf("unknown key operation %q", req.Op)
		}
		if err != nil {
			a.Err = err.Error() // keyring errors never hold key material
		} else if req.Op != "list" {
			n.log.Info("key operation carried out", "op", req.Op, "key", fmt.Sprintf("%x", keyring.Fingerprint(req.Key)), "asked_by", q.Origin)
		}
	}
	if n.ring != nil {
		for _, ks := range n.ring.Stats() {
			a.Keys = append(a.Keys, keyHeld{Fingerprint: fmt.Sprintf("%x", ks.Fingerprint), Primary: ks.Primary})
		}
	}
	return &a
}

// RotateReport says how far RotateKey got.
type RotateReport struct {
	// Steps holds the report of each step taken, in order: install,
	// list, use, list, remove, list.
	Steps []*KeyReport
	// Done reports whether the rotation finished: every alive member
	// holds only the new key.
	Done bool
}

// RotateKey replaces the cluster's primary key with newKey: it installs it
// on every alive member, checks that every one holds it, makes it the
// primary everywhere, checks that, removes the old primary everywhere and
// checks that. It stops at the first step that does not reach every alive
// member, and its error names the members that are missing or failed. It
// stops before anything that could cut a member off: the new key is used
// only once every member holds it, and the old one is removed only once
// every member seals with the new one, so an alive member never receives a
// datagram it cannot open. Running it again after the cause is fixed
// finishes the rotation (every step is idempotent).
func (n *Node) RotateKey(ctx context.Context, newKey []byte) (*RotateReport, error) {
	if n.ring == nil {
		return nil, ErrNoKeyring
	}
	fp := fmt.Sprintf("%x", keyring.Fingerprint(newKey))
	rep := &RotateReport{}
	step := func(r *KeyReport, err error) error {
		if r != nil {
			rep.Steps = append(rep.Steps, r)
		}
		return err
	}
	// The keys to remove: every key but the new one, as this node holds
	// them before the rotation.
	var old [][]byte
	for _, k := range n.ring.Keys() {
		if keyring.Fingerprint(k) != keyring.Fingerprint(newKey) {
			old = append(old, k)
		}
	}
	if err := step(n.InstallKey(ctx, newKey)); err != nil {
		return rep, fmt.Errorf("rotate: %w", err)
	}
	if err := step(n.checkKeys(ctx, func(r *KeyReport) error {
		if r.Keys[fp] != len(r.Answered) {
			return fmt.Errorf("%w: rotate: only %d of %d members hold key %s", ErrKeyOpIncomplete, r.Keys[fp], len(r.Answered), fp)
		}
		return nil
	})); err != nil {
		return rep, err
	}
	if err := step(n.UseKey(ctx, newKey)); err != nil {
		return rep, fmt.Errorf("rotate: %w", err)
	}
	if err := step(n.checkKeys(ctx, func(r *KeyReport) error {
		if r.Primary[fp] != len(r.Answered) {
			return fmt.Errorf("%w: rotate: only %d of %d members use key %s", ErrKeyOpIncomplete, r.Primary[fp], len(r.Answered), fp)
		}
		return nil
	})); err != nil {
		return rep, err
	}
	for _, k := range old {
		if err := step(n.RemoveKey(ctx, k)); err != nil {
			return rep, fmt.Errorf("rotate: %w", err)
		}
	}
	if err := step(n.checkKeys(ctx, func(r *KeyReport) error {
		if len(r.Keys) != 1 || r.Keys[fp] != len(r.Answered) {
			return fmt.Errorf("%w: rotate: members still hold other keys: %v", ErrKeyOpIncomplete, r.Keys)
		}
		return nil
	})); err != nil {
		return rep, err
	}
	rep.Done = true
	return rep, nil
}

// checkKeys lists the keys and applies check to a complete report.
func (n *Node) checkKeys(ctx context.Context, check func(*KeyReport) error) (*KeyReport, error) {
	r, err := n.ListKeys(ctx)
	if err != nil {
		return r, fmt.Errorf("rotate: %w", err)
	}
	return r, check(r)
}
