package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicedata/sluice/sources"
)

// Split reads offsets [Start, End) of one partition. Its exported fields
// are the whole unit of work (and its encoding); the stream it belongs to
// in this process supplies the client and the config: the Source whose
// Splits made it, or whose DecodeSplit rebuilt it.
type Split struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`

	src *Source // the local stream; never encoded
	// skipped and dead count the bad records of the last read
	// (sources.BadRecordCounter); the source's Stats count them all.
	skipped, dead atomic.Int64
}

var (
	_ sources.Split            = (*Split)(nil)
	_ sources.BadRecordCounter = (*Split)(nil)
)

// BadRecordCounts are the records the last Read skipped and dead-lettered.
func (sp *Split) BadRecordCounts() (skipped, deadLettered int64) {
	return sp.skipped.Load(), sp.dead.Load()
}

// splitKind names Kafka splits in the sources envelope.
const splitKind = "kafka"

// Encode is {"v":1,"kind":"kafka","name":<source>,"split":{"topic":..,
// "partition":..,"start":..,"end":..}}.
func (sp *Split) Encode() ([]byte, error) {
	if sp.src == nil {
		return nil, fmt.Errorf("kafka: encode split %s: not made by a source", sp)
	}
	return sources.MarshalSplit(splitKind, sp.src.cfg.Name, sp)
}

// DecodeSplit rebuilds a split from Split.Encode's bytes. The split reads
// through this source's client, which connects on first use, so a Source
// that only decodes and reads (an executor's) needs nothing else: leaders
// and topic IDs are looked up by the read itself. A topic this source's
// config does not read is refused.
func (s *Source) DecodeSplit(b []byte) (sources.Split, error) {
	sp := &Split{}
	if err := sources.UnmarshalSplit(b, splitKind, s.cfg.Name, sp); err != nil {
		return nil, err
	}
	bad := func(why string) (sources.Split, error) {
		return nil, sources.BadSplitf(splitKind, s.cfg.Name, "%s: %s", sp, why)
	}
	switch {
	case sp.Topic == "":
		return bad("no topic")
	case sp.Partition < 0:
		return bad("negative partition")
	case sp.Start < 0 || sp.End < sp.Start:
		return bad("not an offset range")
	case !s.reads(sp.Topic):
		return bad("this source does not read the topic")
	}
	sp.src = s
	return sp, nil
}

// reads says whether topic is one of the config's topics or matches its
// regex.
func (s *Source) reads(topic string) bool {
	if s.re != nil {
		return s.re.MatchString(topic)
	}
	return slices.Contains(s.cfg.Topics, topic)
}

// Rows is -1: transaction markers, aborted records and compaction leave
// offsets with no row, so End-Start is only an upper bound.
func (sp *Split) Rows() int64 { return -1 }

func (sp *Split) String() string {
	return fmt.Sprintf("%s/%d[%d,%d)", sp.Topic, sp.Partition, sp.Start, sp.End)
}

// maxStalls is how many fetches in a row may return nothing while the
// partition's log claims to end before the split does (a truncated log, or
// a new leader catching up) before Read gives up.
const maxStalls = 20

// Read fetches the split's partition directly from its leader, from Start
// until the next fetch position reaches End, and emits records of at most
// RecordRows rows that emit owns.
//
// The fetch position, not the last record seen, decides the end: with
// read_committed the offsets before End may be transaction markers or
// aborted records that are never returned, and kgo.ProcessFetchPartition
// reports the position past them.
func (sp *Split) Read(ctx context.Context, mem memory.Allocator, emit func(arrow.Record) error) error {
	return sp.read(ctx, mem, nil, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadColumns is Read building only the columns cols (sources.ColumnReader):
// a query that reads none of the metadata columns does not build them.
func (sp *Split) ReadColumns(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record) error) error {
	return sp.read(ctx, mem, cols, func(rec arrow.Record, _ func() string) error { return emit(rec) })
}

// ReadAt is ReadColumns (Read when cols is nil) naming the topic, partition
// and offsets of each record (sources.PositionReader).
func (sp *Split) ReadAt(ctx context.Context, mem memory.Allocator, cols []string, emit func(arrow.Record, func() string) error) error {
	return sp.read(ctx, mem, cols, emit)
}

var (
	_ sources.ColumnReader   = (*Split)(nil)
	_ sources.PositionReader = (*Split)(nil)
)

func (sp *Split) read(ctx context.Context, mem memory.Allocator, cols []string, emitAt func(arrow.Record, func() string) error) error {
	s := sp.src
	if err := s.check(); err != nil {
		return err
	}
	sp.skipped.Store(0)
	sp.dead.Store(0)
	rs := newRows(mem, s.schema, s.cfg.ValueSchema, cols)
	defer rs.release()
	where := func() string {
		return fmt.Sprintf("kafka %q: topic %q partition %d", s.cfg.Name, sp.Topic, sp.Partition)
	}
	// first and last are the offsets of the rows in rs.
	var first, last int64
	emit := func(rec arrow.Record) error {
		first, last := first, last // formatted only when an error asks
		return emitAt(rec, func() string {
			return fmt.Sprintf("topic %s, partition %d, offsets %d-%d (split %s)", sp.Topic, sp.Partition, first, last, sp)
		})
	}

	iso := kgo.ReadCommitted()
	if s.cfg.ReadUncommitted {
		iso = kgo.ReadUncommitted()
	}
	off, refresh, stalls, failures := sp.Start, false, 0, 0
	retry := func(err error) error {
		failures++
		if failures > maxStalls {
			return unavailable(fmt.Errorf("%s offset %d: fetch: %w", where(), off, err))
		}
		refresh = true
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(min(failures, 10)) * 50 * time.Millisecond):
		}
		return nil
	}
	for off < sp.End {
		if err := ctx.Err(); err != nil {
			return err
		}
		leader, id, err := s.leader(ctx, sp.Topic, sp.Partition, refresh)
		if err != nil {
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		refresh = false
		resp, err := s.cl.Broker(int(leader)).Request(ctx, sp.fetchRequest(id, off, iso))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		rp, err := findPartition(resp.(*kmsg.FetchResponse), sp.Topic, id, sp.Partition)
		if err == nil {
			err = kerr.ErrorForCode(rp.ErrorCode)
		}
		switch {
		case err == nil:
		case errors.Is(err, kerr.OffsetOutOfRange):
			next, err := sp.gone(ctx, off)
			if err != nil {
				return err
			}
			off = next
			continue
		case kerr.IsRetriable(err) || errors.Is(err, kerr.UnknownTopicID):
			if err := retry(err); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%s offset %d: fetch: %w", where(), off, err)
		}
		failures = 0

		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			Offset: off, IsolationLevel: iso, Topic: sp.Topic, Partition: sp.Partition,
		}, rp, s.dec, nil)
		if fp.Err != nil {
			return fmt.Errorf("%s offset %d: decode fetch: %w", where(), off, fp.Err)
		}
		for _, rec := range fp.Records {
			if rec.Offset >= sp.End {
				break
			}
			if rec.Offset < off {
				continue
			}
			if rs.dec != nil {
				if err := sp.decode(ctx, rs.dec, rec); err != nil {
					return err
				}
				if rs.dec.skip {
					continue
				}
			}
			if rs.n == 0 {
				first = rec.Offset
			}
			last = rec.Offset
			rs.add(rec)
			if rs.n >= s.cfg.RecordRows {
				if err := rs.flush(emit); err != nil {
					return err
				}
			}
		}
		if next > off {
			off, stalls = next, 0
			continue
		}
		// Nothing new: fine while the data is on its way; an error once the
		// log has ended before End for a while.
		logEnd := fp.HighWatermark
		if !s.cfg.ReadUncommitted {
			logEnd = fp.LastStableOffset
		}
		if logEnd >= 0 && logEnd <= off {
			if stalls++; stalls > maxStalls {
				return fmt.Errorf("%s: offsets %d..%d no longer exist (the log ends at %d): %w", where(), off, sp.End-1, logEnd, sources.ErrOffsetGone)
			}
			refresh = true
		}
	}
	return rs.flush(emit)
}

// decode decodes rec's value into dec's slots; a bad value follows the
// BadRecords policy (dec.skip tells the caller to drop the record).
func (sp *Split) decode(ctx context.Context, dec *jsonDecoder, rec *kgo.Record) error {
	s := sp.src
	dec.skip = false
	var err error
	if rec.Value == nil {
		err = errors.New("null value (tombstone)")
	} else {
		err = dec.decode(rec.Value)
	}
	if err == nil {
		return nil
	}
	switch s.cfg.BadRecords {
	case BadRecordsSkip:
		s.skipped.Add(1)
		sp.skipped.Add(1)
		s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "bad record skipped", slog.String("source", s.cfg.Name),
			slog.String("topic", rec.Topic), slog.Int("partition", int(rec.Partition)), slog.Int64("offset", rec.Offset), slog.Any("error", err))
	case BadRecordsDeadLetter:
		if derr := s.cfg.DeadLetter(ctx, BadRecord{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value, Err: err}); derr != nil {
			return fmt.Errorf("kafka %q: topic %q partition %d offset %d: dead letter: %w", s.cfg.Name, rec.Topic, rec.Partition, rec.Offset, derr)
		}
		s.deadLettered.Add(1)
		sp.dead.Add(1)
		s.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "bad record dead-lettered", slog.String("source", s.cfg.Name),
			slog.String("topic", rec.Topic), slog.Int("partition", int(rec.Partition)), slog.Int64("offset", rec.Offset), slog.Any("error", err))
	default:
		return fmt.Errorf("kafka %q: topic %q partition %d offset %d: %w: %w", s.cfg.Name, rec.Topic, rec.Partition, rec.Offset, ErrBadRecord, err)
	}
	dec.skip = true
	return nil
}

// gone handles a fetch at off answered "offset out of range": retention
// deleted it (fail, or skip to the log start and count the loss), or the
// log ends before it.
func (sp *Split) gone(ctx context.Context, off int64) (int64, error) {
	s := sp.src
	lo, err := s.listed(ctx, "earliest", []string{sp.Topic}, s.adm.ListStartOffsets)
	if err != nil {
		return 0, err
	}
	start, ok := lo.get(sp.Topic, sp.Partition)
	if !ok || start <= off {
		return 0, fmt.Errorf("kafka %q: topic %q partition %d: offset %d is out of range but not deleted (log starts at %d); was the log truncated? %w",
			s.cfg.Name, sp.Topic, sp.Partition, off, start, sources.ErrOffsetGone)
	}
	next := min(start, sp.End)
	if s.cfg.OffsetsGone != OffsetsGoneSkip {
		return 0, fmt.Errorf("kafka %q: topic %q partition %d: offsets %d..%d were deleted by retention (the log now starts at %d); set OffsetsGone \"skip\" to skip them: %w",
			s.cfg.Name, sp.Topic, sp.Partition, off, next-1, start, sources.ErrOffsetGone)
	}
	s.lost.Add(next - off)
	s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "offsets lost to retention skipped", slog.String("source", s.cfg.Name),
		slog.String("topic", sp.Topic), slog.Int("partition", int(sp.Partition)), slog.Int64("offset", off), slog.Int64("count", next-off))
	return next, nil
}

func (sp *Split) fetchRequest(id [16]byte, off int64, iso kgo.IsolationLevel) *kmsg.FetchRequest {
	cfg := sp.src.cfg
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(cfg.FetchMaxWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = cfg.FetchMaxBytes
	req.SessionEpoch = -1 // no fetch session: every request is complete
	if !cfg.ReadUncommitted {
		req.IsolationLevel = 1
	}
	t := kmsg.NewFetchRequestTopic()
	t.Topic, t.TopicID = sp.Topic, id
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = sp.Partition
	p.FetchOffset = off
	p.PartitionMaxBytes = cfg.FetchMaxBytes
	p.CurrentLeaderEpoch = -1
	p.LogStartOffset = -1
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

func findPartition(resp *kmsg.FetchResponse, topic string, id [16]byte, partition int32) (*kmsg.FetchResponseTopicPartition, error) {
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	for i := range resp.Topics {
		t := &resp.Topics[i]
		if t.Topic != topic && (t.TopicID != id || id == [16]byte{}) {
			continue
		}
		for j := range t.Partitions {
			if t.Partitions[j].Partition == partition {
				return &t.Partitions[j], nil
			}
		}
	}
	return nil, kerr.UnknownTopicOrPartition
}

// leader returns the partition's leader and its topic's ID, from a cache
// refreshed on request.
func (s *Source) leader(ctx context.Context, topic string, partition int32, refresh bool) (int32, [16]byte, error) {
	s.mu.Lock()
	m, ok := s.meta[topic]
	s.mu.Unlock()
	if !ok || refresh {
		md, err := s.adm.Metadata(ctx, topic)
		if err != nil {
			return 0, [16]byte{}, err
		}
		td, ok := md.Topics[topic]
		if !ok {
			return 0, [16]byte{}, kerr.UnknownTopicOrPartition
		}
		if td.Err != nil {
			return 0, [16]byte{}, td.Err
		}
		m = topicMeta{id: td.ID, leaders: map[int32]int32{}}
		for p, pd := range td.Partitions {
			m.leaders[p] = pd.Leader
		}
		s.mu.Lock()
		s.meta[topic] = m
		s.mu.Unlock()
	}
	l, ok := m.leaders[partition]
	if !ok || l < 0 {
		return 0, [16]byte{}, kerr.LeaderNotAvailable
	}
	return l, m.id, nil
}
