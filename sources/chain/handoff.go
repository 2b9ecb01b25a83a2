package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/kafka"
	"github.com/sluicedata/sluice/sources/parquet"
)

// OffsetsFileName is the file, in the history directory, where whoever
// produced the history records the Kafka position it covers (format.md).
const OffsetsFileName = "_kafka_offsets.json"

// ErrHandoff: the handoff point cannot be found (a missing or malformed
// offsets file, a history without event times).
var ErrHandoff = errors.New("chain: no handoff point")

// Handoff says where the live Kafka stream starts after a Parquet history.
type Handoff struct {
	kind   string // "file", "time", "event-time"
	path   string // "file": "" = <dir>/_kafka_offsets.json
	at     time.Time
	column string
}

// OffsetsFile starts the live stream at the offsets recorded with the
// history in <dir>/_kafka_offsets.json: {"topic":{"partition":next}}, the
// next offset to read per partition (the history holds everything before
// it).
func OffsetsFile() Handoff { return Handoff{kind: "file"} }

// OffsetsFileAt is OffsetsFile with the file at path.
func OffsetsFileAt(path string) Handoff { return Handoff{kind: "file", path: path} }

// Timestamp starts the live stream, per partition, at the first record
// whose Kafka timestamp is at or after t.
func Timestamp(t time.Time) Handoff { return Handoff{kind: "time", at: t} }

// MaxEventTime starts the live stream just after the history's largest
// value of column (a timestamp column): at the first record whose Kafka
// timestamp is at least that value, truncated to milliseconds, plus 1 ms.
// The history is taken to hold every record up to and including its
// largest event time, so the seam has no duplicate; a record sharing that
// millisecond but missing from the history is not read.
func MaxEventTime(column string) Handoff { return Handoff{kind: "event-time", column: column} }

func (h Handoff) String() string {
	switch h.kind {
	case "file":
		if h.path == "" {
			return "offsets-file(" + OffsetsFileName + ")"
		}
		return "offsets-file(" + h.path + ")"
	case "time":
		return "timestamp(" + h.at.UTC().Format(time.RFC3339Nano) + ")"
	case "event-time":
		return "max-event-time(" + h.column + ")"
	}
	return "none"
}

// ParquetKafkaConfig configures a Parquet history followed by Kafka.
type ParquetKafkaConfig struct {
	// Name of the chain; default "chain".
	Name string
	// Dir is the history directory (required).
	Dir string
	// Kafka is the live source's config; its StartingOffsets is set by
	// Handoff and must be left empty.
	Kafka kafka.Config
	// Handoff is OffsetsFile(), Timestamp(t) or MaxEventTime(column)
	// (required).
	Handoff Handoff
	// Schema, when set, projects both phases to these columns by name (the
	// history reads only them). Default: the history's columns, which must
	// then be exactly the Kafka source's.
	Schema *arrow.Schema
	// MaxSplitsPerBatch rate-limits the history (HistoryConfig).
	MaxSplitsPerBatch int
	// Mem allocates what MaxEventTime reads at the handoff (one column of
	// the history, released as it goes); default memory.DefaultAllocator.
	Mem memory.Allocator
}

// Validate reports a config NewParquetKafka cannot use.
func (c ParquetKafkaConfig) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("chain: config: Dir is required")
	case c.Handoff.kind == "":
		return errors.New("chain: config: Handoff is required (OffsetsFile, Timestamp or MaxEventTime)")
	case c.Handoff.kind == "event-time" && c.Handoff.column == "":
		return errors.New("chain: config: MaxEventTime needs a column")
	case c.Kafka.StartingOffsets != "":
		return fmt.Errorf("chain: config: Kafka.StartingOffsets %q is set; the handoff decides it", c.Kafka.StartingOffsets)
	case c.Kafka.EndingOffsets != "":
		return fmt.Errorf("chain: config: Kafka.EndingOffsets %q is set; bound the chain instead", c.Kafka.EndingOffsets)
	}
	return c.Kafka.Validate()
}

// ParquetThenKafka is NewParquetKafka with a default config: the history in
// dir, then kcfg's topics from handoff.
func ParquetThenKafka(ctx context.Context, dir string, kcfg kafka.Config, handoff Handoff, schema *arrow.Schema) (*Chain, error) {
	return NewParquetKafka(ctx, ParquetKafkaConfig{Dir: dir, Kafka: kcfg, Handoff: handoff, Schema: schema})
}

// NewParquetKafka opens the history (reading its footers, and the offsets
// file for OffsetsFile, so a missing or bad file fails here) and returns a
// chain that builds the Kafka source at the handoff. Close the chain to
// close the Kafka client.
func NewParquetKafka(ctx context.Context, cfg ParquetKafkaConfig) (*Chain, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hcfg := HistoryConfig{Name: "history", Dir: cfg.Dir, MaxSplitsPerBatch: cfg.MaxSplitsPerBatch}
	if cfg.Schema != nil {
		// Read only the chain's columns, with the files' types: the chain
		// reports a type mismatch naming both.
		t, err := parquet.Open(ctx, cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("chain: history: %w", err)
		}
		var fs []arrow.Field
		for _, f := range cfg.Schema.Fields() {
			if idx := t.Schema.FieldIndices(f.Name); len(idx) > 0 {
				fs = append(fs, t.Schema.Field(idx[0]))
			} else {
				return nil, fmt.Errorf("chain: %w: column %q (%s in Config.Schema) is missing from the history stream (%s)",
					ErrSchemaMismatch, f.Name, f.Type, cfg.Dir)
			}
		}
		hcfg.Schema = arrow.NewSchema(fs, nil)
	}
	hist, err := NewHistory(ctx, hcfg)
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}

	var starting string // for "file" and "time": fixed now
	switch cfg.Handoff.kind {
	case "file":
		path := cfg.Handoff.path
		if path == "" {
			path = filepath.Join(cfg.Dir, OffsetsFileName)
		}
		if starting, err = ReadOffsetsFile(path, cfg.Kafka.Topics); err != nil {
			return nil, err
		}
	case "time":
		starting = cfg.Handoff.at.UTC().Format(time.RFC3339Nano)
	case "event-time":
		idx := hist.Table().Schema.FieldIndices(cfg.Handoff.column)
		if len(idx) == 0 {
			return nil, fmt.Errorf("chain: %w: event time column %q is not in the history %s", ErrHandoff, cfg.Handoff.column, cfg.Dir)
		}
		if f := hist.Table().Schema.Field(idx[0]); f.Type.ID() != arrow.TIMESTAMP {
			return nil, fmt.Errorf("chain: %w: event time column %q is %s, want a timestamp", ErrHandoff, f.Name, f.Type)
		}
	}

	// The Kafka schema, without contacting a broker: New does not.
	probe, err := kafka.New(cfg.Kafka)
	if err != nil {
		return nil, fmt.Errorf("chain: live: %w", err)
	}
	liveSchema := probe.Schema()
	probe.Close()

	live := func(ctx context.Context, handoff sources.Offset) (sources.Stream, error) {
		kcfg := cfg.Kafka
		kcfg.StartingOffsets = starting
		if cfg.Handoff.kind == "event-time" {
			latest, err := maxEventTime(ctx, cfg.Mem, hist, handoff, cfg.Handoff.column)
			if err != nil {
				return nil, err
			}
			kcfg.StartingOffsets = latest.Truncate(time.Millisecond).Add(time.Millisecond).UTC().Format(time.RFC3339Nano)
		}
		return kafka.New(kcfg)
	}
	c, err := New(Config{Name: cfg.Name, History: hist, Live: live, Schema: cfg.Schema, LiveSchema: liveSchema, LiveIdentity: probe.Identity()})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ReadOffsetsFile reads a {"topic":{"partition":offset}} file and returns
// it as a kafka StartingOffsets map (topics and partitions in order). Every
// topic of topics (Config.Topics; empty with a TopicRegex) must be in it:
// a topic left out would be read from its earliest offset again.
// Partitions it leaves out of a listed topic start at their earliest
// offset, as in kafka.Config.StartingOffsets.
func ReadOffsetsFile(path string, topics []string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("chain: %w: read offsets file: %w", ErrHandoff, err)
	}
	var raw map[string]map[string]int64
	if err := json.Unmarshal(b, &raw); err != nil {
		return "", fmt.Errorf("chain: %w: offsets file %s: want {\"topic\":{\"partition\":offset}}: %w", ErrHandoff, path, err)
	}
	if len(raw) == 0 {
		return "", fmt.Errorf("chain: %w: offsets file %s lists no topic", ErrHandoff, path)
	}
	for _, t := range topics {
		if _, ok := raw[t]; !ok {
			return "", fmt.Errorf("chain: %w: offsets file %s has no offsets for topic %q", ErrHandoff, path, t)
		}
	}
	// Re-encode in order so the config (and its String) is stable.
	names := make([]string, 0, len(raw))
	for t := range raw {
		names = append(names, t)
	}
	sort.Strings(names)
	out := []byte{'{'}
	for i, t := range names {
		if i > 0 {
			out = append(out, ',')
		}
		tb, _ := json.Marshal(t)
		out = append(out, tb...)
		out = append(out, ':', '{')
		type po struct {
			p int64
			o int64
		}
		var ps []po
		for k, o := range raw[t] {
			p, err := strconv.ParseInt(k, 10, 32)
			if err != nil || p < 0 || strconv.FormatInt(p, 10) != k {
				return "", fmt.Errorf("chain: %w: offsets file %s: topic %q: %q is not a partition number", ErrHandoff, path, t, k)
			}
			if o < 0 {
				return "", fmt.Errorf("chain: %w: offsets file %s: topic %q partition %d: negative offset %d", ErrHandoff, path, t, p, o)
			}
			ps = append(ps, po{p, o})
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].p < ps[j].p })
		for j, x := range ps {
			if j > 0 {
				out = append(out, ',')
			}
			out = append(out, '"')
			out = strconv.AppendInt(out, x.p, 10)
			out = append(out, '"', ':')
			out = strconv.AppendInt(out, x.o, 10)
		}
		out = append(out, '}')
	}
	out = append(out, '}')
	return string(out), nil
}

// maxEventTime is the largest value of column over the history's rows up to
// its offset end, read as that column alone.
func maxEventTime(ctx context.Context, mem memory.Allocator, hist *History, end sources.Offset, column string) (time.Time, error) {
	idx := hist.Table().Schema.FieldIndices(column)
	if len(idx) == 0 {
		return time.Time{}, fmt.Errorf("chain: %w: event time column %q is not in the history", ErrHandoff, column)
	}
	field := hist.Table().Schema.Field(idx[0])
	tt, ok := field.Type.(*arrow.TimestampType)
	if !ok {
		return time.Time{}, fmt.Errorf("chain: %w: event time column %q is %s, want a timestamp", ErrHandoff, column, field.Type)
	}
	start, err := hist.Initial(ctx)
	if err != nil {
		return time.Time{}, err
	}
	splits, err := hist.Splits(ctx, start, end)
	if err != nil {
		return time.Time{}, fmt.Errorf("chain: max event time: %w", err)
	}
	schema := arrow.NewSchema([]arrow.Field{field}, nil)
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	var (
		latest arrow.Timestamp
		found  bool
	)
	for _, sp := range splits {
		hs := sp.(*HistorySplit)
		err := parquet.ReadSplit(ctx, mem, hs.Split, schema, hs.PartitionColumns, hs.BatchRows, func(rec arrow.Record) error {
			defer rec.Release()
			col := rec.Column(0).(*array.Timestamp)
			for i, v := range col.TimestampValues() {
				if col.IsValid(i) && (!found || v > latest) {
					latest, found = v, true
				}
			}
			return nil
		})
		if err != nil {
			return time.Time{}, fmt.Errorf("chain: max event time: %w", err)
		}
	}
	if !found {
		return time.Time{}, fmt.Errorf("chain: %w: the history has no value in event time column %q", ErrHandoff, column)
	}
	return latest.ToTime(tt.Unit), nil
}
