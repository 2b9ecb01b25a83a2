package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/sluicedata/sluice/sinks"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	// ErrConfig is returned by Validate (and New) for an invalid Config.
	ErrConfig = errors.New("kafka sink: invalid config")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("kafka sink: closed")
	// ErrUnreachable is returned when no broker answered within Timeout
	// (the error names the brokers and the timeout), and wraps a commit
	// that failed for a reason a retry may change: a refused, reset or
	// timed-out connection, a connection the broker closed, a retriable
	// Kafka error code (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
	// CONCURRENT_TRANSACTIONS, REQUEST_TIMED_OUT, ...), a deadline. Its
	// Transient method says so to microbatch's restart strategies, which
	// restart the query from its checkpoint; the batch then commits once
	// (the group's committed batch id decides).
	ErrUnreachable error = transientError("kafka sink: brokers unreachable")
	// ErrTopicMissing is returned when the topic does not exist.
	ErrTopicMissing = errors.New("kafka sink: topic does not exist")
	// ErrRecordTooLarge is returned by Commit for a record larger than
	// MaxRecordBytes or than the broker accepts; it names topic and partition.
	ErrRecordTooLarge = errors.New("kafka sink: record too large")
	// ErrSchema is returned for a schema the Config does not fit (a missing
	// column, headers of the wrong type) or a record that differs from
	// its batch's schema.
	ErrSchema = errors.New("kafka sink: schema mismatch")
	// ErrUnsupportedType is returned for a column type the sink cannot encode.
	ErrUnsupportedType = errors.New("kafka sink: unsupported type")
	// ErrPendingFull is returned by Write when prepared output would exceed
	// MaxPendingBytes.
	ErrPendingFull = errors.New("kafka sink: pending output over MaxPendingBytes")
	// ErrUnknownMessage is returned by Commit for a commit message of
	// another batch, or a token this Sink does not hold (another process's,
	// or output dropped by Abort).
	ErrUnknownMessage = errors.New("kafka sink: unknown commit message")
	// ErrCorruptMessage is returned by Commit for an inline commit message
	// (from a remote task) whose records do not decode.
	ErrCorruptMessage = errors.New("kafka sink: corrupt commit message")
	// ErrFenced is returned by Commit when another sink with the same
	// QueryID started: this one's producer is fenced and must be closed.
	ErrFenced = errors.New("kafka sink: fenced by a newer sink with the same QueryID")
)

// transientError is a sentinel a restart may cure: microbatch.Transient
// finds its Transient method with errors.As.
type transientError string

func (e transientError) Error() string   { return string(e) }
func (e transientError) Transient() bool { return true }

// unreachable wraps err in ErrUnreachable when it says the brokers could
// not be reached or answered with a retriable error (by identity: kgo's
// own retry rule, kerr's retriable codes, net errors, deadlines). A
// record too large, a fenced producer or a schema error stay as they are.
func unreachable(err error) error {
	if err == nil || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRecordTooLarge) || errors.Is(err, ErrFenced) ||
		errors.Is(err, ErrSchema) || errors.Is(err, ErrClosed) {
		return err
	}
	var ke *kerr.Error
	var ne net.Error
	if kgo.IsRetryableBrokerErr(err) || (errors.As(err, &ke) && ke.Retriable) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// markerHeader marks the record an otherwise empty transaction writes (see
// the package doc); readers of the topic skip records carrying it.
const markerHeader = "sluice-marker"

// IsMarker reports whether r is the marker record of an empty batch, which
// consumers of the topic should skip.
func IsMarker(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == markerHeader {
			return true
		}
	}
	return false
}

// Sink writes batches to a Kafka topic; see the package doc. It is safe for
// concurrent use; Commits are serialised.
type Sink struct {
	cfg      Config
	instance string // tells this Sink's commit messages from another's

	mu           sync.Mutex
	closed       bool
	next         int64
	pending      map[int64]*pending // by token
	pendingBytes int64
	// committed remembers batches this instance committed in at-least-once
	// mode, so a repeated Commit within one process is a no-op; across
	// restarts that mode may write a batch again.
	committed map[int64]bool
	// last is the highest batch id this instance committed in exactly-once
	// mode. A real broker makes a transactional offset commit readable a
	// few ms after EndTxn returns; within one process this closes that
	// window, across processes InitProducerID does (it waits for the
	// previous transaction's markers).
	last int64

	commitMu sync.Mutex // one Commit (one transaction) at a time
	conn     *conn      // nil until first needed; guarded by commitMu

	// testHookBeforeEnd, when set, runs inside a transaction just before it
	// is committed: a test blocks there to play a driver that hangs.
	testHookBeforeEnd func()
}

type pending struct {
	batch int64
	recs  []*kgo.Record
	bytes int64
}

// message is a task's commit message: parked records name this Sink's
// instance and a token; inline ones (a remote task's) carry the records
// in Rows, in the inline form of inline.go.
type message struct {
	Sink    string `json:"sink,omitempty"`
	Batch   int64  `json:"batch"`
	Task    int    `json:"task"`
	Token   int64  `json:"token,omitempty"`
	Inline  bool   `json:"inline,omitempty"`
	Rows    []byte `json:"rows,omitempty"`
	Records int    `json:"records"`
	Bytes   int64  `json:"bytes"`
	// DeadLetter is the task's message to the dead-letter sink, when it
	// rejected rows (sinks.DeadLetterWriter).
	DeadLetter json.RawMessage `json:"dead_letter,omitempty"`
}

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.InProcess = (*Sink)(nil)
)

// InProcess is the dead-letter sink's reason, if it has one: the Kafka
// sink's own records cross processes in its commit messages.
func (s *Sink) InProcess() string {
	if ip, ok := s.cfg.DeadLetter.(sinks.InProcess); ok && s.cfg.BadRecords == sinks.BadRecordsDeadLetter {
		if why := ip.InProcess(); why != "" {
			return "dead-letter sink " + s.cfg.DeadLetter.Name() + ": " + why
		}
	}
	return ""
}

// New returns a sink for cfg. It does not contact the brokers: the first
// Commit (or Abort, in exactly-once mode) connects, checks the topic and
// fences any older producer of the same QueryID.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Sink{
		cfg:       cfg.withDefaults(),
		instance:  hex.EncodeToString(id[:]),
		pending:   map[int64]*pending{},
		committed: map[int64]bool{},
		last:      -1,
	}, nil
}

func (s *Sink) Name() string { return s.cfg.Name }

// Config returns the sink's configuration with defaults filled in.
func (s *Sink) Config() Config { return s.cfg }

// Check accepts Append, and Update when a KeyColumn is set (a compacted
// topic then keeps the latest row per key). Complete is refused: a topic is
// a log, and re-sending the whole result every batch is rarely meant.
func (s *Sink) Check(mode sinks.Mode, schema *arrow.Schema) error {
	switch mode {
	case sinks.Append:
	case sinks.Update:
		if s.cfg.KeyColumn == "" {
			return fmt.Errorf("kafka sink: mode %q needs a KeyColumn, so readers (or compaction) can tell which row a change replaces", mode)
		}
	case sinks.Complete:
		return fmt.Errorf("kafka sink: mode %q is not supported: a topic is an append-only log; use update mode with a KeyColumn on a compacted topic", mode)
	default:
		return fmt.Errorf("kafka sink: unknown mode %q", mode)
	}
	if schema == nil {
		return nil
	}
	if _, err := newLayout(s.cfg, schema); err != nil {
		return err
	}
	if s.cfg.BadRecords == sinks.BadRecordsDeadLetter {
		dl, err := sinks.DeadLetterSchema(schema)
		if err != nil {
			return fmt.Errorf("kafka sink %s: %w", s.cfg.Name, err)
		}
		if err := s.cfg.DeadLetter.Check(sinks.Append, dl); err != nil {
			return fmt.Errorf("kafka sink %s: dead-letter sink %s: %w", s.cfg.Name, s.cfg.DeadLetter.Name(), err)
		}
	}
	return nil
}

// NewWriter returns the writer of one task of batch b.
func (s *Sink) NewWriter(ctx context.Context, b sinks.Batch, task int) (sinks.Writer, error) {
	if err := s.Check(b.Mode, b.Schema); err != nil {
		return nil, err
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	w := &writer{s: s, batch: b, task: task, remote: sinks.IsRemote(ctx)}
	if b.Schema != nil {
		l, err := newLayout(s.cfg, b.Schema)
		if err != nil {
			return nil, err
		}
		w.layout = &l
	}
	if s.cfg.BadRecords == sinks.BadRecordsDeadLetter {
		dw, err := sinks.NewDeadLetterWriter(ctx, s.cfg.DeadLetter, s.cfg.Name, b, task, s.cfg.Mem)
		if err != nil {
			return nil, fmt.Errorf("kafka sink %s: batch %d task %d: %w", s.cfg.Name, b.ID, task, err)
		}
		w.dead = dw
	}
	return w, nil
}

// reserve accounts n more pending bytes, failing past MaxPendingBytes.
func (s *Sink) reserve(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.pendingBytes+n > s.cfg.MaxPendingBytes {
		return fmt.Errorf("%w: %d bytes pending, %d more, limit %d", ErrPendingFull, s.pendingBytes, n, s.cfg.MaxPendingBytes)
	}
	s.pendingBytes += n
	return nil
}

func (s *Sink) unreserve(n int64) {
	s.mu.Lock()
	if !s.closed { // Close zeroed the count
		s.pendingBytes -= n
	}
	s.mu.Unlock()
}

// Commit writes the batch's records once; see the package doc.
func (s *Sink) Commit(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	done := s.committed[b.ID] || s.last >= b.ID
	s.mu.Unlock()
	if s.cfg.BadRecords == sinks.BadRecordsDeadLetter {
		// First, under the batch's id: see sinks.CommitDeadLetters.
		if err := sinks.CommitDeadLetters(ctx, s.cfg.DeadLetter, b, deadLetters(msgs)); err != nil {
			return fmt.Errorf("commit batch %d: %w", b.ID, err)
		}
	}
	if done {
		s.dropBatch(b.ID)
		return nil
	}

	c, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("commit batch %d: %w", b.ID, unreachable(err))
	}
	if s.cfg.Semantics == ExactlyOnce {
		last, err := c.lastBatch(ctx)
		if err != nil {
			return fmt.Errorf("commit batch %d: %w", b.ID, unreachable(err))
		}
		if last >= b.ID {
			// Batch ids only grow: the batch (or a later one) is in Kafka.
			s.dropBatch(b.ID)
			return nil
		}
	}
	recs, tasks, err := s.collect(b, msgs)
	if err != nil {
		return fmt.Errorf("commit batch %d: %w", b.ID, err)
	}
	if s.cfg.Semantics == ExactlyOnce {
		err = c.commitTxn(ctx, b.ID, recs, s.testHookBeforeEnd)
	} else {
		err = c.produce(ctx, recs)
	}
	if err != nil {
		return fmt.Errorf("commit batch %d%s: %w", b.ID, which(err, recs, tasks), unreachable(err))
	}
	s.mu.Lock()
	if s.cfg.Semantics == AtLeastOnce {
		s.committed[b.ID] = true
	} else {
		s.last = max(s.last, b.ID)
	}
	s.mu.Unlock()
	s.dropBatch(b.ID)
	return nil
}

// deadLetters returns the dead-letter messages of msgs, nil for a task
// without; a message that does not parse has none (Commit's collect
// reports it).
func deadLetters(msgs []sinks.CommitMessage) []sinks.CommitMessage {
	out := make([]sinks.CommitMessage, len(msgs))
	for i, raw := range msgs {
		var m struct {
			DeadLetter json.RawMessage `json:"dead_letter"`
		}
		if json.Unmarshal(raw, &m) == nil {
			out[i] = sinks.CommitMessage(m.DeadLetter)
		}
	}
	return out
}

// taskSpan is where one task's records start in a batch's records.
type taskSpan struct{ task, start int }

// which names the record err is about (recordError) by its task and its
// position among the task's records, and its key: " task 2 record 7 (key
// "k")"; "" when err names no record.
func which(err error, recs []*kgo.Record, tasks []taskSpan) string {
	var re *recordError
	if !errors.As(err, &re) {
		return ""
	}
	for i, r := range recs {
		if r != re.rec {
			continue
		}
		t := taskSpan{task: -1}
		for _, ts := range tasks {
			if ts.start <= i {
				t = ts
			}
		}
		key := "null key"
		if r.Key != nil {
			k := r.Key
			if len(k) > 64 {
				k = k[:64]
			}
			key = fmt.Sprintf("key %q", k)
			if len(r.Key) > 64 {
				key += "..."
			}
		}
		return fmt.Sprintf(", task %d record %d (%s)", t.task, i-t.start, key)
	}
	return ""
}

// collect returns the records of msgs in task order and where each task's
// start: parked ones stay pending until the batch commits, so a failed
// Commit can be retried; an inline message is decoded again on each try.
func (s *Sink) collect(b sinks.Batch, msgs []sinks.CommitMessage) ([]*kgo.Record, []taskSpan, error) {
	ms := make([]message, len(msgs))
	inline := make([][]*kgo.Record, len(msgs))
	for i, raw := range msgs {
		m := &ms[i]
		if err := json.Unmarshal(raw, m); err != nil {
			return nil, nil, fmt.Errorf("%w: %.200s: %v", ErrUnknownMessage, raw, err)
		}
		if m.Batch != b.ID {
			return nil, nil, fmt.Errorf("%w: a message of batch %d: %.200s", ErrUnknownMessage, m.Batch, raw)
		}
		if !m.Inline {
			continue
		}
		recs, err := parseInline(m.Rows)
		if err == nil && len(recs) != m.Records {
			err = fmt.Errorf("%d records, the message says %d", len(recs), m.Records)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: sink %s, task %d: %v", ErrCorruptMessage, s.cfg.Name, m.Task, err)
		}
		inline[i] = recs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var recs []*kgo.Record
	tasks := make([]taskSpan, len(ms))
	for i, m := range ms {
		tasks[i] = taskSpan{task: m.Task, start: len(recs)}
		if m.Inline {
			recs = append(recs, inline[i]...)
			continue
		}
		p := s.pending[m.Token]
		if m.Sink != s.instance || p == nil || p.batch != b.ID {
			return nil, nil, fmt.Errorf("%w: %.200s (a message of another process or run, or dropped by Abort)", ErrUnknownMessage, msgs[i])
		}
		recs = append(recs, p.recs...)
	}
	return recs, tasks, nil
}

// dropBatch forgets every pending output of batch.
func (s *Sink) dropBatch(batch int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, p := range s.pending {
		if p.batch == batch {
			s.pendingBytes -= p.bytes
			delete(s.pending, tok)
		}
	}
}

// Abort drops what tasks of b prepared. Nothing of an uncommitted batch is
// in Kafka (the transaction lives only inside Commit), so in exactly-once
// mode Abort only makes sure this sink's producer is initialised: that
// fences and aborts a transaction a crashed predecessor left open, which
// would otherwise stall read_committed readers until TxnTimeout.
func (s *Sink) Abort(ctx context.Context, b sinks.Batch, msgs []sinks.CommitMessage) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	s.dropBatch(b.ID)
	var derr error
	if s.cfg.BadRecords == sinks.BadRecordsDeadLetter {
		derr = sinks.AbortDeadLetters(ctx, s.cfg.DeadLetter, b, deadLetters(msgs))
	}
	if s.cfg.Semantics != ExactlyOnce {
		return derr
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.connect(ctx); err != nil {
		return errors.Join(fmt.Errorf("abort batch %d: %w", b.ID, err), derr)
	}
	return derr
}

// LastCommitted returns the id of the last batch committed by this sink's
// query (-1 if none). Exactly-once mode only.
func (s *Sink) LastCommitted(ctx context.Context) (int64, error) {
	if s.cfg.Semantics != ExactlyOnce {
		return -1, fmt.Errorf("kafka sink: LastCommitted needs %s semantics", ExactlyOnce)
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	c, err := s.connect(ctx)
	if err != nil {
		return -1, err
	}
	n, err := c.lastBatch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(n, s.last), err
}

// Close drops pending output and closes the producer. A transaction cannot
// be open here (Commit ends or aborts its own). Close is idempotent.
func (s *Sink) Close() error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.pending = map[int64]*pending{}
	s.pendingBytes = 0
	s.mu.Unlock()
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
	return nil
}

// connect returns the sink's connection, dialing on first use. Callers hold
// commitMu.
func (s *Sink) connect(ctx context.Context) (*conn, error) {
	if s.conn != nil && !s.conn.broken() {
		return s.conn, nil
	}
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
	c, err := dial(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	s.conn = c
	return c, nil
}
