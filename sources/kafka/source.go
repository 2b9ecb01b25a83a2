package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedata/sluice/sources"
)

var (
	// ErrClosed: the source was closed.
	ErrClosed = errors.New("kafka: source closed")
	// ErrBadRecord: a record's value could not be decoded under the "fail"
	// policy; the error names topic, partition and offset.
	ErrBadRecord = errors.New("kafka: bad record")
	// ErrUnavailable wraps a failure to reach the brokers or an answer a
	// retry may change: a refused, reset or timed-out connection, a
	// connection the broker closed, a retriable Kafka error code
	// (NOT_LEADER_OR_FOLLOWER, COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT,
	// ...), a deadline. Its Transient method says so to microbatch's
	// restart strategies, which restart the query from its checkpoint.
	ErrUnavailable error = transientError("kafka: brokers unavailable")
)

// transientError is a sentinel a restart may cure: microbatch.Transient
// finds its Transient method with errors.As.
type transientError string

func (e transientError) Error() string   { return string(e) }
func (e transientError) Transient() bool { return true }

// unavailable wraps err in ErrUnavailable when it says the brokers could
// not be reached or answered with a retriable error (by identity: kgo's
// own retry rule, kerr's retriable codes, net errors, deadlines).
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrBadRecord) || errors.Is(err, ErrClosed) {
		return err
	}
	var ke *kerr.Error
	var ne net.Error
	if kgo.IsRetryableBrokerErr(err) || (errors.As(err, &ke) && ke.Retriable) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// Stats counts what the source dropped on purpose; nothing is lost
// silently.
type Stats struct {
	// BadRecordsSkipped under the "skip" policy.
	BadRecordsSkipped int64
	// BadRecordsDeadLettered handed to DeadLetter.
	BadRecordsDeadLettered int64
	// OffsetsLost to retention under OffsetsGone "skip": offsets a batch
	// should have read that were already deleted (markers included).
	OffsetsLost int64
}

// Source reads Kafka topics between recorded offsets.
type Source struct {
	cfg      Config
	starting position
	ending   position
	re       *regexp.Regexp
	schema   *arrow.Schema
	cl       *kgo.Client
	adm      *kadm.Client
	dec      kgo.Decompressor

	mu       sync.Mutex
	bound    partitions // nil: unbounded
	boundSet bool
	// avail is what the last Latest found available per partition (capped
	// by the bound, before MaxOffsetsPerBatch): Backlog's answer without
	// another round-trip to the brokers.
	avail partitions
	meta  map[string]topicMeta

	// drops is what the last Splits left out under OffsetsGone "skip",
	// keyed by its start and end offsets (Drops' answer).
	dropsKey string
	drops    []sources.Drop

	skipped, deadLettered, lost atomic.Int64
	closed                      atomic.Bool
}

type topicMeta struct {
	id      [16]byte
	leaders map[int32]int32
}

var (
	_ sources.Stream    = (*Source)(nil)
	_ sources.Committer = (*Source)(nil)
	_ sources.Bounder   = (*Source)(nil)

	_ sources.Backlog = (*Source)(nil)
	_ sources.Dropper = (*Source)(nil)
)

// New returns a source and its client; brokers are first contacted by the
// first call that needs them. Close the source when done.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Source{cfg: cfg, schema: schemaFor(cfg.ValueSchema), dec: kgo.DefaultDecompressor(), meta: map[string]topicMeta{}}
	s.starting, _ = parseStarting(cfg.StartingOffsets)
	s.ending, _ = parseEnding(cfg.EndingOffsets)
	if cfg.TopicRegex != "" {
		s.re = regexp.MustCompile("^(?:" + cfg.TopicRegex + ")$")
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DialTimeout(cfg.DialTimeout),
	}, cfg.ClientOptions...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka %q: client: %w", cfg.Name, err)
	}
	s.cl, s.adm = cl, kadm.NewClient(cl)
	return s, nil
}

func (s *Source) Name() string { return s.cfg.Name }

// Identity is "kafka topics=<names, sorted>" or "kafka pattern=<TopicRegex>":
// the topics are the offset space. Brokers are not part of it (a cluster
// reached through other brokers holds the same data), nor are the value
// schema, isolation level or rate limits (they change how records are
// decoded or batched, not which offsets exist).
func (s *Source) Identity() string {
	if s.cfg.TopicRegex != "" {
		return "kafka pattern=" + s.cfg.TopicRegex
	}
	topics := slices.Clone(s.cfg.Topics)
	slices.Sort(topics)
	return "kafka topics=" + strings.Join(slices.Compact(topics), ",")
}

func (s *Source) Schema() *arrow.Schema { return s.schema }
func (s *Source) Config() Config        { return s.cfg }

// Stats returns the counters so far.
func (s *Source) Stats() Stats {
	return Stats{BadRecordsSkipped: s.skipped.Load(), BadRecordsDeadLettered: s.deadLettered.Load(), OffsetsLost: s.lost.Load()}
}

// Close closes the client. It is idempotent.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cl.Close()
	return nil
}

func (s *Source) check() error {
	if s.closed.Load() {
		return fmt.Errorf("kafka %q: %w", s.cfg.Name, ErrClosed)
	}
	return nil
}

// Initial is StartingOffsets resolved for every partition of the topics now.
func (s *Source) Initial(ctx context.Context) (_ sources.Offset, err error) {
	defer func() { err = unavailable(err) }()
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := s.ensureBound(ctx); err != nil {
		return nil, err
	}
	topics, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := s.listLatest(ctx, topics)
	if err != nil {
		return nil, err
	}
	earliest, err := s.listed(ctx, "earliest", topics, s.adm.ListStartOffsets)
	if err != nil {
		return nil, err
	}
	out := make(partitions)
	var byTime partitions
	if s.starting.kind == "time" {
		byTime, err = s.listed(ctx, "offsets by time", topics, func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
			return s.adm.ListOffsetsAfterMilli(ctx, s.starting.millis, ts...)
		})
		if err != nil {
			return nil, err
		}
	}
	latest.each(func(t string, p int32, hi int64) {
		lo, _ := earliest.get(t, p)
		var o int64
		switch s.starting.kind {
		case Earliest:
			o = lo
		case Latest:
			o = hi
		case "time":
			var ok bool
			if o, ok = byTime.get(t, p); !ok {
				o = hi // no record at or after the time
			}
		case "map":
			v, ok := s.starting.explicit[t][p]
			switch {
			case !ok || v == OffsetEarliest:
				o = lo
			case v == OffsetLatest:
				o = hi
			default:
				o = v
			}
		}
		// A time after the last committed record lists the high watermark,
		// which may be past the last stable offset.
		o = min(max(o, lo), hi)
		out.set(t, p, o)
	})
	return encode(offset{T: out}), nil
}

// Latest is, per partition, the last stable offset (the high watermark
// when reading uncommitted), capped by EndingOffsets or Bound and then by
// MaxOffsetsPerBatch spread over the partitions by lag. Partitions not in
// start are new: they start at their earliest offset, recorded in the
// returned offset's "new" map, and are left out until they hold data.
// Partitions no longer found keep their start offset.
func (s *Source) Latest(ctx context.Context, start sources.Offset) (_ sources.Offset, err error) {
	defer func() { err = unavailable(err) }()
	if err := s.check(); err != nil {
		return nil, err
	}
	st, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	if err := s.ensureBound(ctx); err != nil {
		return nil, err
	}
	topics, err := s.discover(ctx)
	if err != nil {
		return nil, err
	}
	latest, err := s.listLatest(ctx, topics)
	if err != nil {
		return nil, err
	}
	var newTopics []string
	for _, t := range sortedTopics(latest) {
		for p := range latest[t] {
			if _, ok := st.T.get(t, p); !ok {
				newTopics = append(newTopics, t)
				break
			}
		}
	}
	earliest := partitions{}
	if len(newTopics) > 0 {
		if earliest, err = s.listed(ctx, "earliest", newTopics, s.adm.ListStartOffsets); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	bound := s.bound
	s.mu.Unlock()

	end, fresh := st.T.clone(), partitions{}
	var ranges []span
	latest.each(func(t string, p int32, hi int64) {
		from, known := st.T.get(t, p)
		if !known {
			from, _ = earliest.get(t, p)
		}
		if bound != nil {
			b, ok := bound.get(t, p)
			if !ok {
				b = from // not part of the bounded input
			}
			hi = min(hi, b)
		}
		if !known {
			if hi <= from {
				return
			}
			fresh.set(t, p, from)
		}
		if hi < from {
			if bound == nil && err == nil {
				err = fmt.Errorf("kafka %q: topic %q partition %d: recorded offset %d is past the end of the log (%d); was the topic recreated? %w",
					s.cfg.Name, t, p, from, hi, sources.ErrOffsetGone)
			}
			hi = from
		}
		ranges = append(ranges, span{topic: t, partition: p, from: from, to: hi})
	})
	if err != nil {
		return nil, err
	}
	avail := partitions{}
	for _, r := range ranges {
		avail.set(r.topic, r.partition, r.to)
	}
	s.mu.Lock()
	s.avail = avail
	s.mu.Unlock()
	spread(ranges, s.cfg.MaxOffsetsPerBatch)
	for _, r := range ranges {
		end.set(r.topic, r.partition, r.to)
	}
	return encode(offset{T: end, New: fresh}), nil
}

// Backlog is the offsets available after end per partition, from what the
// last Latest listed (no request to the brokers); only when Latest has not
// run in this process does it list the partitions' ends itself. Partitions
// are keyed "topic/partition"; latest is end with every partition moved to
// the offset available.
func (s *Source) Backlog(ctx context.Context, end sources.Offset) (sources.Offset, int64, map[string]int64, error) {
	if err := s.check(); err != nil {
		return nil, 0, nil, err
	}
	e, err := s.parse(end)
	if err != nil {
		return nil, 0, nil, err
	}
	s.mu.Lock()
	avail := s.avail
	s.mu.Unlock()
	if avail == nil {
		topics, err := s.discover(ctx)
		if err != nil {
			return nil, 0, nil, err
		}
		if avail, err = s.listLatest(ctx, topics); err != nil {
			return nil, 0, nil, err
		}
		s.mu.Lock()
		bound := s.bound
		s.mu.Unlock()
		if bound != nil {
			avail.each(func(t string, p int32, hi int64) {
				if b, ok := bound.get(t, p); ok && b < hi {
					avail.set(t, p, b)
				}
			})
		}
	}
	// Only end's partitions lag (one end does not read yet has no lag);
	// one avail does not know lags 0.
	latest := e.T.clone()
	var lag int64
	per := map[string]int64{}
	e.T.each(func(t string, p int32, at int64) {
		var l int64
		if hi, ok := avail.get(t, p); ok {
			l = max(hi-at, 0)
		}
		latest.set(t, p, at+l)
		per[t+"/"+strconv.Itoa(int(p))] = l
		lag += l
	})
	return encode(offset{T: latest}), lag, per, nil
}

type span struct {
	topic     string
	partition int32
	from, to  int64
}

// spread caps the total of to-from at max: each partition gets its share
// floor(max*lag/total), and the offsets left over go one each to the
// largest remainders (ties: topic, partition order), so the result depends
// only on the lags.
func spread(rs []span, limit int64) {
	var total uint64
	for _, r := range rs {
		total += uint64(r.to - r.from)
	}
	if limit <= 0 || total <= uint64(limit) {
		return
	}
	type share struct {
		i   int
		rem uint64
	}
	shares := make([]share, len(rs))
	var given int64
	for i, r := range rs {
		hi, lo := bits.Mul64(uint64(r.to-r.from), uint64(limit))
		q, rem := bits.Div64(hi, lo, total) // hi < total as lag <= total
		rs[i].to = r.from + int64(q)
		given += int64(q)
		shares[i] = share{i, rem}
	}
	sort.SliceStable(shares, func(a, b int) bool { return shares[a].rem > shares[b].rem })
	for k := 0; given < limit; k++ {
		rs[shares[k].i].to++
		given++
	}
}

// Splits returns, in topic and partition order, one split per partition
// whose offset moved, cut every MaxOffsetsPerSplit offsets.
func (s *Source) Splits(ctx context.Context, start, end sources.Offset) (_ []sources.Split, err error) {
	defer func() { err = unavailable(err) }()
	if err := s.check(); err != nil {
		return nil, err
	}
	st, err := s.parse(start)
	if err != nil {
		return nil, err
	}
	en, err := s.parse(end)
	if err != nil {
		return nil, err
	}
	// Under OffsetsGone "skip", offsets retention already deleted are left
	// out here, where the driver learns of the loss with the batch's id
	// (sources.Dropper); a read still skips what retention deletes later.
	var starts partitions
	var drops []sources.Drop
	if s.cfg.OffsetsGone == OffsetsGoneSkip {
		var topics []string
		en.T.each(func(t string, _ int32, _ int64) {
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		})
		if starts, err = s.listed(ctx, "earliest", topics, s.adm.ListStartOffsets); err != nil {
			return nil, err
		}
	}
	var out []sources.Split
	st.T.each(func(t string, p int32, o int64) {
		if _, ok := en.T.get(t, p); !ok && err == nil {
			err = fmt.Errorf("kafka %q: end offset %s lacks topic %q partition %d of start %s: %w", s.cfg.Name, end, t, p, start, sources.ErrBadOffset)
		}
	})
	en.T.each(func(t string, p int32, hi int64) {
		lo, ok := st.T.get(t, p)
		if !ok {
			lo, _ = en.New.get(t, p) // not recorded: the beginning of the log
		}
		if hi < lo && err == nil {
			err = fmt.Errorf("kafka %q: topic %q partition %d: end offset %d before start %d: %w", s.cfg.Name, t, p, hi, lo, sources.ErrBadOffset)
		}
		if first, ok := starts.get(t, p); ok && first > lo && lo < hi {
			next := min(first, hi)
			drops = append(drops, sources.Drop{Kind: sources.DropLost,
				Input: fmt.Sprintf("topic %q partition %d offsets %d..%d", t, p, lo, next-1), Count: next - lo,
				Reason: fmt.Sprintf("deleted by retention: the log now starts at %d", first)})
			s.lost.Add(next - lo)
			lo = next
		}
		for lo < hi {
			next := hi
			if m := s.cfg.MaxOffsetsPerSplit; m > 0 && hi-lo > m {
				next = lo + m
			}
			out = append(out, &Split{Topic: t, Partition: p, Start: lo, End: next, src: s})
			lo = next
		}
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.dropsKey, s.drops = string(start)+" "+string(end), drops
	s.mu.Unlock()
	return out, nil
}

// Drops returns the offsets the last Splits(start, end) left out because
// retention had deleted them (OffsetsGone "skip" only). Unlike the files
// source's, the decision is not recorded: retention only moves forward, so
// a re-run loses the same offsets or more, never fewer.
func (s *Source) Drops(start, end sources.Offset) []sources.Drop {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropsKey != string(start)+" "+string(end) {
		return nil
	}
	return slices.Clone(s.drops)
}

// Commit writes end's offsets to CommitGroup, when set, so lag tools see
// the query's progress.
func (s *Source) Commit(ctx context.Context, end sources.Offset) error {
	if s.cfg.CommitGroup == "" {
		return nil
	}
	if err := s.check(); err != nil {
		return err
	}
	en, err := s.parse(end)
	if err != nil {
		return err
	}
	os := make(kadm.Offsets)
	en.T.each(func(t string, p int32, o int64) {
		os.Add(kadm.Offset{Topic: t, Partition: p, At: o, LeaderEpoch: -1})
	})
	resp, err := s.adm.CommitOffsets(ctx, s.cfg.CommitGroup, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka %q: commit offsets to group %q: %w", s.cfg.Name, s.cfg.CommitGroup, err)
	}
	return nil
}

// Bound fixes the end of the input at the latest offsets now: later Latest
// calls never go past them, and partitions appearing later are not read.
func (s *Source) Bound(ctx context.Context) (err error) {
	defer func() { err = unavailable(err) }()
	if err := s.check(); err != nil {
		return err
	}
	topics, err := s.discover(ctx)
	if err != nil {
		return err
	}
	latest, err := s.listLatest(ctx, topics)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bound, s.boundSet = latest, true
	return nil
}

// ensureBound captures EndingOffsets once.
func (s *Source) ensureBound(ctx context.Context) error {
	s.mu.Lock()
	done := s.boundSet || s.ending.kind == ""
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.Bound(ctx); err != nil {
		return err
	}
	if s.ending.kind != "map" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, ps := range s.ending.explicit {
		for p, o := range ps {
			if o != OffsetLatest {
				s.bound.set(t, p, o)
			}
		}
	}
	return nil
}

// discover lists the topics to read now, sorted. It asks a broker
// directly: kadm's calls answer from kgo's metadata cache (up to
// MetadataMinAge, 5s, old), which this request also refreshes, so new
// topics and partitions are seen by the next batch.
func (s *Source) discover(ctx context.Context) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	if s.re == nil {
		for _, t := range s.cfg.Topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return nil, fmt.Errorf("kafka %q: list topics: %w", s.cfg.Name, err)
	}
	var out []string
	meta := map[string]topicMeta{}
	for _, t := range resp.Topics {
		if t.Topic == nil || t.ErrorCode != 0 || t.IsInternal {
			continue // a topic not created yet is read once it exists
		}
		if s.re != nil && !s.re.MatchString(*t.Topic) {
			continue
		}
		out = append(out, *t.Topic)
		m := topicMeta{id: t.TopicID, leaders: map[int32]int32{}}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 {
				m.leaders[p.Partition] = p.Leader
			}
		}
		meta[*t.Topic] = m
	}
	sort.Strings(out)
	s.mu.Lock()
	for t, m := range meta {
		s.meta[t] = m
	}
	s.mu.Unlock()
	return out, nil
}

func (s *Source) listLatest(ctx context.Context, topics []string) (partitions, error) {
	if s.cfg.ReadUncommitted {
		return s.listed(ctx, "end offsets", topics, s.adm.ListEndOffsets)
	}
	return s.listed(ctx, "last stable offsets", topics, s.adm.ListCommittedOffsets)
}

func (s *Source) listed(ctx context.Context, what string, topics []string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (partitions, error) {
	out := make(partitions)
	if len(topics) == 0 {
		return out, nil
	}
	lo, err := list(ctx, topics...)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka %q: list %s: %w", s.cfg.Name, what, err)
	}
	for t, ps := range lo {
		for p, o := range ps {
			if o.Offset >= 0 {
				out.set(t, p, o.Offset)
			}
		}
	}
	return out, nil
}
