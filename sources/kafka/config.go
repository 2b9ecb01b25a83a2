package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Bad-record policies (Config.BadRecords).
const (
	BadRecordsFail       = "fail"
	BadRecordsSkip       = "skip"
	BadRecordsDeadLetter = "dead-letter"
)

// Offsets-gone policies (Config.OffsetsGone).
const (
	OffsetsGoneFail = "fail"
	OffsetsGoneSkip = "skip"
)

// Special positions in StartingOffsets / EndingOffsets.
const (
	Earliest = "earliest"
	Latest   = "latest"
)

// In an explicit per-partition map (StartingOffsets, EndingOffsets), these
// values stand for a position rather than an offset, as in Spark.
const (
	OffsetEarliest int64 = -2
	OffsetLatest   int64 = -1
)

// BadRecord is a record whose value could not be decoded into ValueSchema.
// Key and Value are valid only during the DeadLetter call; copy to retain.
type BadRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Err       error
}

// DeadLetter receives bad records under the "dead-letter" policy. It is
// called from the task reading the split, so it must be safe for concurrent
// use; an error fails the split (and the batch).
type DeadLetter func(ctx context.Context, r BadRecord) error

// Config configures a Kafka source.
type Config struct {
	// Name identifies the source within a query; default "kafka".
	Name string
	// Brokers are the seed brokers, host:port (required).
	Brokers []string
	// Topics to read; exactly one of Topics and TopicRegex is set.
	Topics []string
	// TopicRegex selects topics by name (Go regexp, anchored at both
	// ends); matching topics are discovered at every Latest.
	TopicRegex string

	// StartingOffsets is where a new query starts: "earliest" (default),
	// "latest", a time (RFC 3339, e.g. "2026-11-01T00:00:00Z": the first
	// record at or after it), or a JSON map {"topic":{"0":23,"1":-2}} where
	// -2 is earliest and -1 latest; partitions the map leaves out start at
	// earliest. Only Initial uses it; partitions discovered later always
	// start at their earliest offset.
	StartingOffsets string
	// EndingOffsets bounds the query (a backfill): "" (unbounded, default),
	// "latest" (the latest offsets seen by the first Initial or Latest call
	// of this Source), or a JSON map like StartingOffsets where -1 is that
	// same captured latest and partitions left out end there too.
	EndingOffsets string

	// MaxOffsetsPerBatch caps how many offsets one batch covers, spread over
	// partitions in proportion to their lag; 0 = no cap.
	MaxOffsetsPerBatch int64
	// MaxOffsetsPerSplit cuts a partition's range into splits of at most
	// this many offsets so one busy partition is read by several tasks;
	// 0 = one split per partition.
	MaxOffsetsPerSplit int64
	// RecordRows is the most rows in one emitted Arrow record; default 8192.
	RecordRows int

	// ReadUncommitted reads records of open and aborted transactions too.
	// The default (false) is read_committed: batches end at the last stable
	// offset and aborted records are never read.
	ReadUncommitted bool

	// ValueSchema, when set, decodes each value as a JSON object into these
	// columns (see json.go for the types); otherwise the value column holds
	// the raw bytes.
	ValueSchema *arrow.Schema
	// BadRecords is "fail" (default), "skip" or "dead-letter".
	BadRecords string
	// DeadLetter receives bad records; required with "dead-letter".
	DeadLetter DeadLetter `json:"-"`
	// OffsetsGone is "fail" (default) or "skip": what a read does when
	// retention deleted offsets a batch should read. "skip" is Spark's
	// failOnDataLoss=false: the lost offsets are counted (Stats, and the
	// batch's progress when Splits finds them) and logged, never silent.
	OffsetsGone string

	// CommitGroup, when set, is the consumer group Commit writes each
	// batch's end offsets to, for lag monitoring only: the checkpoint, never
	// the group, decides what is read.
	CommitGroup string

	// ClientID sent to brokers; default "sluice".
	ClientID string
	// DialTimeout for broker connections; default 10s.
	DialTimeout time.Duration
	// FetchMaxWait is how long a broker may hold a fetch waiting for data;
	// default 500ms.
	FetchMaxWait time.Duration
	// FetchMaxBytes per fetch response; default 16 MiB.
	FetchMaxBytes int32
	// ClientOptions are added to the franz-go client options (TLS, SASL...).
	ClientOptions []kgo.Opt `json:"-"`
	// Logger receives, in the process that reads, one Debug record per bad
	// record skipped or dead-lettered (topic, partition, offset, error) and
	// a Warn record per offset range lost to retention; default
	// slog.Default(). The driver logs each batch's count of bad records at
	// Warn (sources.BadRecordCounter).
	Logger *slog.Logger `json:"-"`
}

// metaColumns are the columns every output has besides key and value.
var metaColumns = []string{"key", "value", "topic", "partition", "offset", "timestamp", "headers"}

// Validate reports a config New cannot use.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: config: Brokers is required")
	}
	if (len(c.Topics) == 0) == (c.TopicRegex == "") {
		return errors.New("kafka: config: set exactly one of Topics and TopicRegex")
	}
	for _, t := range c.Topics {
		if t == "" {
			return errors.New("kafka: config: empty topic name")
		}
	}
	if c.TopicRegex != "" {
		if _, err := regexp.Compile(c.TopicRegex); err != nil {
			return fmt.Errorf("kafka: config: TopicRegex: %w", err)
		}
	}
	if _, err := parseStarting(c.StartingOffsets); err != nil {
		return err
	}
	if _, err := parseEnding(c.EndingOffsets); err != nil {
		return err
	}
	if c.MaxOffsetsPerBatch < 0 || c.MaxOffsetsPerSplit < 0 || c.RecordRows < 0 || c.FetchMaxBytes < 0 {
		return errors.New("kafka: config: MaxOffsetsPerBatch, MaxOffsetsPerSplit, RecordRows and FetchMaxBytes must not be negative")
	}
	switch c.BadRecords {
	case "", BadRecordsFail, BadRecordsSkip:
	case BadRecordsDeadLetter:
		if c.DeadLetter == nil {
			return errors.New("kafka: config: BadRecords \"dead-letter\" needs DeadLetter")
		}
	default:
		return fmt.Errorf("kafka: config: BadRecords %q: want fail, skip or dead-letter", c.BadRecords)
	}
	switch c.OffsetsGone {
	case "", OffsetsGoneFail, OffsetsGoneSkip:
	default:
		return fmt.Errorf("kafka: config: OffsetsGone %q: want fail or skip", c.OffsetsGone)
	}
	if c.ValueSchema != nil {
		if err := checkValueSchema(c.ValueSchema); err != nil {
			return fmt.Errorf("kafka: config: ValueSchema: %w", err)
		}
		for _, f := range c.ValueSchema.Fields() {
			for _, m := range metaColumns {
				if f.Name == m && m != "value" {
					return fmt.Errorf("kafka: config: ValueSchema field %q clashes with the metadata column of that name", f.Name)
				}
			}
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "kafka"
	}
	if c.StartingOffsets == "" {
		c.StartingOffsets = Earliest
	}
	if c.RecordRows == 0 {
		c.RecordRows = 8192
	}
	if c.BadRecords == "" {
		c.BadRecords = BadRecordsFail
	}
	if c.OffsetsGone == "" {
		c.OffsetsGone = OffsetsGoneFail
	}
	if c.ClientID == "" {
		c.ClientID = "sluice"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 500 * time.Millisecond
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 16 << 20
	}
	return c
}

func (c Config) String() string {
	topics := strings.Join(c.Topics, ",")
	if c.TopicRegex != "" {
		topics = "/" + c.TopicRegex + "/"
	}
	value := "raw"
	if c.ValueSchema != nil {
		value = "json" + c.ValueSchema.String()
	}
	return fmt.Sprintf("kafka{name=%s brokers=%s topics=%s starting=%s ending=%s max_offsets_per_batch=%d max_offsets_per_split=%d read_committed=%t value=%s bad_records=%s offsets_gone=%s commit_group=%s}",
		c.Name, strings.Join(c.Brokers, ","), topics, c.StartingOffsets, c.EndingOffsets,
		c.MaxOffsetsPerBatch, c.MaxOffsetsPerSplit, !c.ReadUncommitted, value, c.BadRecords, c.OffsetsGone, c.CommitGroup)
}

// position is a parsed StartingOffsets or EndingOffsets.
type position struct {
	kind     string                     // Earliest, Latest, "time", "map" or "" (unbounded)
	millis   int64                      // for "time"
	explicit map[string]map[int32]int64 // for "map"
}

func parseStarting(s string) (position, error) {
	switch s {
	case "", Earliest:
		return position{kind: Earliest}, nil
	case Latest:
		return position{kind: Latest}, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		m, err := parsePartitionMap(s, true)
		if err != nil {
			return position{}, fmt.Errorf("kafka: config: StartingOffsets: %w", err)
		}
		return position{kind: "map", explicit: m}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return position{}, fmt.Errorf("kafka: config: StartingOffsets %q: want earliest, latest, an RFC 3339 time or a JSON partition map", s)
	}
	return position{kind: "time", millis: t.UnixMilli()}, nil
}

func parseEnding(s string) (position, error) {
	switch s {
	case "":
		return position{}, nil
	case Latest:
		return position{kind: Latest}, nil
	}
	m, err := parsePartitionMap(s, false)
	if err != nil {
		return position{}, fmt.Errorf("kafka: config: EndingOffsets %q: want \"\", latest or a JSON partition map: %w", s, err)
	}
	return position{kind: "map", explicit: m}, nil
}

func parsePartitionMap(s string, earliestOK bool) (map[string]map[int32]int64, error) {
	var raw map[string]map[string]int64
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, err
	}
	out := make(map[string]map[int32]int64, len(raw))
	for t, ps := range raw {
		out[t] = make(map[int32]int64, len(ps))
		for k, v := range ps {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("topic %q: partition %q is not a partition number", t, k)
			}
			if v < OffsetEarliest || (v == OffsetEarliest && !earliestOK) {
				return nil, fmt.Errorf("topic %q partition %d: offset %d is not allowed", t, p, v)
			}
			out[t][int32(p)] = v
		}
	}
	return out, nil
}

// sortedTopics returns m's keys in order.
func sortedTopics[V any](m map[string]V) []string {
	ts := make([]string, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}
