package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/sluicedata/sluice/sinks"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one producer client of a Sink (transactional in exactly-once
// mode) and an admin client over it. Callers hold the Sink's commitMu.
type conn struct {
	cfg     Config
	cl      *kgo.Client
	adm     *kadm.Client
	topicID [16]byte
	parts   int
	// maxMessage is the topic's max.message.bytes, 0 when the brokers
	// would not tell.
	maxMessage int64

	failed bool // a transaction failed: redial (a fresh producer epoch) before the next
	fenced bool // sticky: a newer sink with our QueryID owns the transactional id
}

func partitioner(p Partitioner) kgo.Partitioner {
	switch p {
	case RoundRobinPartitioner:
		return kgo.RoundRobinPartitioner()
	case StickyPartitioner:
		return kgo.StickyPartitioner()
	}
	return kgo.StickyKeyPartitioner(nil) // murmur2, Kafka's default
}

// dial connects to the brokers, checks the topic and, in exactly-once mode,
// initialises the transactional producer: InitProducerID bumps the epoch of
// the QueryID's transactional id, which fences an older producer and aborts
// any transaction it left open.
func dial(ctx context.Context, cfg Config) (*conn, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(partitioner(cfg.Partitioner)),
		kgo.ProducerBatchMaxBytes(cfg.MaxRecordBytes),
		kgo.DialTimeout(cfg.Timeout),
		kgo.RetryTimeout(cfg.Timeout),
		kgo.RecordDeliveryTimeout(max(cfg.Timeout, time.Second)), // kgo's floor
		kgo.ProducerLinger(0),
	}
	if cfg.Semantics == ExactlyOnce {
		opts = append(opts,
			kgo.TransactionalID(GroupName(cfg.QueryID)),
			kgo.TransactionTimeout(cfg.TxnTimeout),
		)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka sink: client for brokers %v: %w", cfg.Brokers, err)
	}
	c := &conn{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}
	fail := func(err error) (*conn, error) {
		cl.Close()
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := cl.Ping(cctx); err != nil {
		return fail(fmt.Errorf("%w: %v not reachable within %s: %v", ErrUnreachable, cfg.Brokers, cfg.Timeout, err))
	}
	// A topic created just before the query starts may not have reached
	// every broker's metadata cache yet: look again for a short while (as
	// Kafka's producer waits max.block.ms) before calling it missing.
	var td kadm.TopicDetail
	missing := true
	for wait := time.Now().Add(min(cfg.Timeout, 5*time.Second)); ; {
		topics, err := c.adm.ListTopics(cctx, cfg.Topic)
		if err != nil {
			return fail(fmt.Errorf("%w: metadata of topic %s from %v within %s: %v", ErrUnreachable, cfg.Topic, cfg.Brokers, cfg.Timeout, err))
		}
		var ok bool
		td, ok = topics[cfg.Topic]
		missing = !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) || errors.Is(td.Err, kerr.UnknownTopicID)
		if !missing || time.Now().After(wait) || cctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	switch {
	case missing:
		return fail(fmt.Errorf("%w: %s on brokers %v (the sink does not create topics)", ErrTopicMissing, cfg.Topic, cfg.Brokers))
	case td.Err != nil:
		return fail(fmt.Errorf("kafka sink: metadata of topic %s: %w", cfg.Topic, td.Err))
	}
	c.topicID, c.parts = td.ID, len(td.Partitions)
	c.maxMessage = topicMaxMessage(cctx, c.adm, cfg.Topic)
	if cfg.BadRecords == sinks.BadRecordsDeadLetter && c.maxMessage > 0 && c.maxMessage < int64(cfg.MaxRecordBytes) {
		// Tasks dead-letter records by MaxRecordBytes; one between the two
		// limits would fail every run of its batch instead.
		return fail(fmt.Errorf("%w: topic %s takes record batches of up to %d bytes (max.message.bytes), less than MaxRecordBytes %d: set MaxRecordBytes to at most %d so the dead-letter policy sees every record the topic refuses",
			ErrConfig, cfg.Topic, c.maxMessage, cfg.MaxRecordBytes, c.maxMessage))
	}
	if _, _, err := cl.ProducerID(cctx); err != nil {
		if isFenced(err) {
			err = fmt.Errorf("%w: %v", ErrFenced, err)
		}
		return fail(fmt.Errorf("kafka sink: init producer %q on %v: %w", GroupName(cfg.QueryID), cfg.Brokers, err))
	}
	return c, nil
}

// topicMaxMessage is topic's max.message.bytes, 0 when the brokers do not
// say (no DescribeConfigs permission): the limit is then MaxRecordBytes
// alone.
func topicMaxMessage(ctx context.Context, adm *kadm.Client, topic string) int64 {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return 0
	}
	for _, c := range rc.Configs {
		if c.Key == "max.message.bytes" && c.Value != nil {
			if n, err := strconv.ParseInt(*c.Value, 10, 64); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

func (c *conn) broken() bool { return c.failed && !c.fenced }

func (c *conn) close() { c.cl.Close() }

func isFenced(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// lastBatch returns the id of the last committed batch: the group's
// committed offset on (topic, partition 0) minus one, -1 when none. It
// waits for pending transactional offsets to settle (RequireStable); dial
// has already aborted ours from a crashed predecessor.
func (c *conn) lastBatch(ctx context.Context) (int64, error) {
	if c.fenced {
		return -1, ErrFenced
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	group := GroupName(c.cfg.QueryID)
	for {
		resps, err := c.adm.FetchOffsets(kadm.RequireStable(cctx), group)
		if err == nil {
			o, ok := resps.Lookup(c.cfg.Topic, 0)
			switch {
			case !ok:
				return -1, nil
			case o.Err == nil:
				return o.At - 1, nil
			}
			err = o.Err
		}
		if errors.Is(err, kerr.GroupIDNotFound) {
			return -1, nil
		}
		// Retriable: pending transactional offsets, and a coordinator that is
		// loading or not there yet (a fresh cluster creates its offsets topic
		// on the first group request).
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !kerr.IsRetriable(err) {
			return -1, fmt.Errorf("fetch committed batch of group %s on %s[0]: %w", group, c.cfg.Topic, err)
		}
		select {
		case <-cctx.Done():
			return -1, fmt.Errorf("fetch committed batch of group %s on %s[0]: %w (last: %v)", group, c.cfg.Topic, cctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// commitTxn writes recs and the batch id in one transaction:
//
//	BeginTransaction
//	produce recs (or, when there are none, one marker record) and Flush
//	AddOffsetsToTxn(group); TxnOffsetCommit(group, topic[0] = batch+1)
//	EndTransaction(commit)
//
// Any failure aborts the transaction and marks the conn for a redial.
func (c *conn) commitTxn(ctx context.Context, batch int64, recs []*kgo.Record, hook func()) (err error) {
	if c.fenced {
		return ErrFenced
	}
	cl := c.cl
	if err := cl.BeginTransaction(); err != nil {
		c.failed = true
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		c.failed = true
		if isFenced(err) {
			c.fenced = true
			err = fmt.Errorf("%w: %w", ErrFenced, err)
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		_ = cl.AbortBufferedRecords(actx)
		_ = cl.EndTransaction(actx, kgo.TryAbort) // redial re-inits the producer either way
	}()

	if len(recs) == 0 {
		// EndTransaction sends nothing unless a record was produced, which
		// would leave the offset commit below in an open transaction.
		recs = []*kgo.Record{{
			Key:     []byte(markerHeader),
			Value:   []byte{},
			Headers: []kgo.RecordHeader{{Key: markerHeader, Value: fmt.Appendf(nil, "%s/%d", c.cfg.QueryID, batch)}},
		}}
	}
	if err := c.produceAll(ctx, recs); err != nil {
		return err
	}

	id, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		return fmt.Errorf("producer id: %w", err)
	}
	if err := c.commitOffset(ctx, id, epoch, batch); err != nil {
		return err
	}
	if hook != nil {
		hook()
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	c.waitVisible(ctx, recs)
	return nil
}

// waitVisible waits until read_committed readers can see recs: a real
// broker answers EndTxn once the commit is decided and writes the commit
// markers to the partitions just after (we measured ~1-20 ms on Kafka 4.4),
// so the last stable offset lags the return of EndTransaction. The batch
// is committed either way; after Timeout this gives up silently.
func (c *conn) waitVisible(ctx context.Context, recs []*kgo.Record) {
	last := map[int32]int64{}
	for _, r := range recs {
		last[r.Partition] = max(last[r.Partition], r.Offset)
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	backoff := time.Millisecond
	for {
		lso, err := c.adm.ListCommittedOffsets(cctx, c.cfg.Topic)
		if err == nil {
			for p, off := range last {
				if o, ok := lso.Lookup(c.cfg.Topic, p); ok && o.Err == nil && o.Offset > off {
					delete(last, p)
				}
			}
			if len(last) == 0 {
				return
			}
		}
		select {
		case <-cctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
}

// produce writes recs with the idempotent producer (at-least-once mode).
func (c *conn) produce(ctx context.Context, recs []*kgo.Record) error {
	if err := c.produceAll(ctx, recs); err != nil {
		c.failed = true
		return err
	}
	return nil
}

// produceAll produces recs and waits for all of them, returning the first
// error, which names the record's topic and partition.
func (c *conn) produceAll(ctx context.Context, recs []*kgo.Record) error {
	var (
		mu    sync.Mutex
		first error
	)
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if first != nil {
			return
		}
		if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
			limit := fmt.Sprintf("MaxRecordBytes %d", c.cfg.MaxRecordBytes)
			if c.maxMessage > 0 {
				limit += fmt.Sprintf(", topic max.message.bytes %d", c.maxMessage)
			}
			err = &recordError{rec: r, err: fmt.Errorf("%w: %d-byte record (key %d, value %d bytes; a batch of it alone %d bytes) to %s[%d], %s: %w",
				ErrRecordTooLarge, recordSize(r), len(r.Key), len(r.Value), sizeOf(r), r.Topic, r.Partition, limit, err)}
		} else {
			err = fmt.Errorf("produce to %s[%d]: %w", r.Topic, r.Partition, err)
		}
		first = err
	}
	for _, r := range recs {
		// A Commit retried after a failure produces the same records again:
		// clear what the last attempt set (partition, offset, timestamp).
		*r = kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers}
		c.cl.Produce(ctx, r, promise)
	}
	if err := c.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush to %s: %w", c.cfg.Topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	return first
}

// recordError is an error about one record of a batch; Commit names the
// record's task and position (which).
type recordError struct {
	rec *kgo.Record
	err error
}

func (e *recordError) Error() string { return e.err.Error() }
func (e *recordError) Unwrap() error { return e.err }

// sizeOf is the size franz-go gives a record batch holding r alone (Kafka's
// v2 batch: 61 bytes of header, 4 of array length, then the record), which
// it refuses to produce when over ProducerBatchMaxBytes (MaxRecordBytes) and
// a broker refuses over the topic's max.message.bytes (less the 4 bytes).
// Compression only ever makes a batch smaller: franz-go sends the
// uncompressed form when compressing does not shrink it.
func sizeOf(r *kgo.Record) int64 {
	const batchOverhead = 4 + 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4
	l := 1 + 1 + 1 + // attributes, timestamp delta 0, offset delta 0
		varintLen(len(r.Key)) + len(r.Key) +
		varintLen(len(r.Value)) + len(r.Value) +
		varintLen(len(r.Headers))
	for _, h := range r.Headers {
		l += varintLen(len(h.Key)) + len(h.Key) + varintLen(len(h.Value)) + len(h.Value)
	}
	return int64(batchOverhead + varintLen(l) + l)
}

// varintLen is the length of n as a zig-zag varint (n >= 0).
func varintLen(n int) int {
	u := uint64(n) << 1
	l := 1
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}

func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// commitOffset commits offset batch+1 for (topic, partition 0) in group
// GroupName(QueryID) inside the open transaction. kgo only commits offsets
// in a transaction for a group consumer, so this sends the raw requests.
func (c *conn) commitOffset(ctx context.Context, id int64, epoch int16, batch int64) error {
	txnID := GroupName(c.cfg.QueryID)
	group := txnID

	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID = txnID
	add.ProducerID = id
	add.ProducerEpoch = epoch
	add.Group = group
	if err := retryConcurrent(ctx, func() (int16, error) {
		resp, err := add.RequestWith(ctx, c.cl)
		if err != nil {
			return 0, err
		}
		return resp.ErrorCode, nil
	}); err != nil {
		return fmt.Errorf("add offsets of group %s to transaction %s: %w", group, txnID, err)
	}

	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID = txnID
	req.Group = group
	req.ProducerID = id
	req.ProducerEpoch = epoch
	req.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic = c.cfg.Topic
	rt.TopicID = c.topicID // v6+ addresses topics by id only
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	rp.Partition = 0
	rp.Offset = batch + 1
	rp.LeaderEpoch = -1
	meta := fmt.Sprintf("sluice batch %d", batch)
	rp.Metadata = &meta
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if err := retryConcurrent(ctx, func() (int16, error) {
		resp, err := req.RequestWith(ctx, c.cl)
		if err != nil {
			return 0, err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode, nil
				}
			}
		}
		return 0, nil
	}); err != nil {
		return fmt.Errorf("commit batch id offset of group %s on %s[0]: %w", group, c.cfg.Topic, err)
	}
	return nil
}

// retryConcurrent runs do until its error code is not a retriable one
// (CONCURRENT_TRANSACTIONS while the coordinator finishes the previous
// transaction, a coordinator moving or loading).
func retryConcurrent(ctx context.Context, do func() (int16, error)) error {
	backoff := 5 * time.Millisecond
	for {
		code, err := do()
		if err != nil {
			return err
		}
		err = kerr.ErrorForCode(code)
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.ConcurrentTransactions) && !errors.Is(err, kerr.CoordinatorLoadInProgress) &&
			!errors.Is(err, kerr.CoordinatorNotAvailable) && !errors.Is(err, kerr.NotCoordinator) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}
