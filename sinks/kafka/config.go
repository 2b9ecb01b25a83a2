package kafka

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/sluicedata/sluice/sinks"
)

// Semantics is the delivery guarantee of a Sink.
type Semantics string

const (
	// ExactlyOnce writes each batch in one Kafka transaction that also
	// records the batch id; a repeated Commit of a batch writes nothing.
	ExactlyOnce Semantics = "exactly-once"
	// AtLeastOnce writes with the idempotent producer and no transaction: a
	// batch re-run by a restarted driver is written again.
	AtLeastOnce Semantics = "at-least-once"
)

// Partitioner names how records are spread over the topic's partitions.
type Partitioner string

const (
	// HashPartitioner (the default) is Kafka's default: murmur2 of the key,
	// so one key always lands in one partition; records without a key stick
	// to one partition per producer batch.
	HashPartitioner Partitioner = "hash"
	// RoundRobinPartitioner ignores keys and cycles through partitions.
	RoundRobinPartitioner Partitioner = "round-robin"
	// StickyPartitioner ignores keys and fills one partition per producer
	// batch before moving on (fewest requests).
	StickyPartitioner Partitioner = "sticky"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxPendingBytes = 256 << 20
	DefaultMaxRecordBytes  = 1 << 20 // Kafka's default max.message.bytes, roughly
	DefaultTxnTimeout      = time.Minute
)

// Config configures a Sink. The zero value of every optional field means
// its default; Validate reports the first invalid field.
type Config struct {
	Name    string   // default "kafka:<Topic>"
	Brokers []string // seed brokers, host:port
	Topic   string   // must exist; the sink does not create topics

	// KeyColumn, when set, is the record key: a string or binary column as
	// its bytes, any other type as its JSON text. Null keys are nil.
	KeyColumn string
	// ValueColumn, when set, is the record value (encoded like the key; a
	// null is a tombstone). Empty: the whole row as one JSON object, every
	// column but HeadersColumn (see newAppender for how types render).
	ValueColumn string
	// HeadersColumn, when set, is a map<string, string|binary> or a
	// list<struct<key: string, value: string|binary>> column of record
	// headers.
	HeadersColumn string
	Partitioner   Partitioner // default HashPartitioner

	// QueryID names the query, stable across restarts; required for
	// exactly-once. The transactional id and the consumer group that
	// records committed batches are both "sluice-sink-<QueryID>": two
	// sinks with one QueryID fence each other.
	QueryID   string
	Semantics Semantics // default ExactlyOnce

	// Timeout bounds reaching the brokers and each Commit's produce and
	// transaction calls. Default DefaultTimeout.
	Timeout time.Duration
	// TxnTimeout is the broker-side transaction timeout: how long a
	// transaction left open by a crashed driver blocks read_committed
	// readers if no new sink with the QueryID starts. Default DefaultTxnTimeout.
	TxnTimeout time.Duration
	// MaxPendingBytes bounds the encoded records of prepared but not
	// committed tasks, over all batches; a Write beyond it fails with
	// ErrPendingFull. Default DefaultMaxPendingBytes.
	MaxPendingBytes int64
	// MaxRecordBytes is the largest record batch the producer sends; a
	// record too big for a batch of its own follows BadRecords. Default
	// DefaultMaxRecordBytes; keep it at or below the topic's
	// max.message.bytes (under "dead-letter", Commit refuses a topic whose
	// max.message.bytes is lower).
	MaxRecordBytes int32

	// BadRecords is what happens to a row whose record the topic cannot
	// take (one over MaxRecordBytes, sizeOf): sinks.BadRecordsFail ("fail",
	// the default) fails the batch's Commit with ErrRecordTooLarge naming
	// the topic, partition, batch, task, record and key;
	// sinks.BadRecordsDeadLetter ("dead-letter") writes the row to
	// DeadLetter instead (sinks.DeadLetterSchema: the row, batch, sink
	// name, task, row position and reason) and the rest of the batch to
	// the topic. The dead letters commit with the batch: first, under the
	// batch's id, so a re-run of the batch writes them once.
	BadRecords string
	// DeadLetter receives the rejected rows under "dead-letter": a sink
	// used by this sink alone (its batch ids are this query's), able to
	// store the rows the topic refused (a Parquet directory; a Kafka sink
	// only on a topic that takes larger records, and with its own QueryID).
	// If it fails, the batch fails, and its re-run commits both once.
	DeadLetter sinks.Sink `json:"-"`
	// Mem allocates dead-letter rows (they live during one Write); default
	// the Go allocator.
	Mem memory.Allocator `json:"-"`
}

// GroupName is the consumer group whose committed offset records the last
// batch written by query queryID; it is also the transactional id.
func GroupName(queryID string) string { return "sluice-sink-" + queryID }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	var errs []string
	if len(c.Brokers) == 0 {
		errs = append(errs, "no Brokers")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, "an empty broker address")
			break
		}
	}
	if c.Topic == "" {
		errs = append(errs, "no Topic")
	}
	switch c.Semantics {
	case "", ExactlyOnce:
		if c.QueryID == "" {
			errs = append(errs, "exactly-once needs a QueryID (stable per query: it names the transactional id and the group recording batch ids)")
		}
	case AtLeastOnce:
	default:
		errs = append(errs, fmt.Sprintf("unknown Semantics %q (want %q or %q)", c.Semantics, ExactlyOnce, AtLeastOnce))
	}
	switch c.Partitioner {
	case "", HashPartitioner, RoundRobinPartitioner, StickyPartitioner:
	default:
		errs = append(errs, fmt.Sprintf("unknown Partitioner %q (want %q, %q or %q)", c.Partitioner, HashPartitioner, RoundRobinPartitioner, StickyPartitioner))
	}
	cols := map[string]string{}
	for _, col := range []struct{ field, name string }{{"KeyColumn", c.KeyColumn}, {"ValueColumn", c.ValueColumn}, {"HeadersColumn", c.HeadersColumn}} {
		if col.name == "" {
			continue
		}
		if other, ok := cols[col.name]; ok {
			errs = append(errs, fmt.Sprintf("%s and %s are both %q", other, col.field, col.name))
		}
		cols[col.name] = col.field
	}
	switch c.BadRecords {
	case "", sinks.BadRecordsFail:
	case sinks.BadRecordsDeadLetter:
		if c.DeadLetter == nil {
			errs = append(errs, `BadRecords "dead-letter" needs DeadLetter`)
		}
	default:
		errs = append(errs, fmt.Sprintf("BadRecords %q: want %q or %q", c.BadRecords, sinks.BadRecordsFail, sinks.BadRecordsDeadLetter))
	}
	if c.Timeout < 0 || c.TxnTimeout < 0 || c.MaxPendingBytes < 0 || c.MaxRecordBytes < 0 {
		errs = append(errs, "negative Timeout, TxnTimeout, MaxPendingBytes or MaxRecordBytes")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(errs, "; "))
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "kafka:" + c.Topic
	}
	if c.Semantics == "" {
		c.Semantics = ExactlyOnce
	}
	if c.Partitioner == "" {
		c.Partitioner = HashPartitioner
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.TxnTimeout == 0 {
		c.TxnTimeout = DefaultTxnTimeout
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if c.BadRecords == "" {
		c.BadRecords = sinks.BadRecordsFail
	}
	if c.Mem == nil {
		c.Mem = memory.DefaultAllocator
	}
	return c
}

// String prints the configuration on one line (STYLE habit 12).
func (c Config) String() string {
	c = c.withDefaults()
	dl := ""
	if c.DeadLetter != nil {
		dl = fmt.Sprintf(" dead-letter=%q", c.DeadLetter.Name())
	}
	return fmt.Sprintf("kafka sink %q: brokers=%v topic=%s key=%q value=%q headers=%q partitioner=%s semantics=%s query=%q timeout=%s txn-timeout=%s max-pending=%d max-record=%d bad-records=%s%s",
		c.Name, c.Brokers, c.Topic, c.KeyColumn, c.ValueColumn, c.HeadersColumn, c.Partitioner, c.Semantics, c.QueryID, c.Timeout, c.TxnTimeout, c.MaxPendingBytes, c.MaxRecordBytes, c.BadRecords, dl)
}
