package nexmark

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sinks"
	pqsink "github.com/sluicedata/sluice/sinks/parquet"
	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/files"
	"github.com/sluicedata/sluice/sources/generate"
)

// buildStream builds o.Query over one stream per kind (the in-process
// generator's, or the Parquet of o.Input's), with cfg, and returns it with
// each stream's kind by source name. Over Parquet each stream takes at
// most one file and o.BatchEvents rows (whole row groups) per batch, so the
// three move through event time at their own pace (the watermark is the
// minimum); the seen-file logs live in ckpt. A query's plan reads only the
// streams it uses.
func buildStream(o Options, ckpt string, cfg dataset.Config) (*dataset.Dataset, map[string]string, error) {
	q, ok := queries[o.Query]
	if !ok {
		return nil, nil, fmt.Errorf("unknown query %q (want one of %s)", o.Query, strings.Join(QueryNames(), ", "))
	}
	gen := generate.NexmarkConfig{Seed: o.Seed, EventRate: o.EventRate, Events: o.Events, MaxEventsPerBatch: o.BatchEvents}
	if o.Input != "" {
		m, err := ReadMeta(o.Input)
		if err != nil {
			return nil, nil, err
		}
		gen = generate.NexmarkConfig{Seed: m.Seed, EventRate: m.EventRate}
	}
	ds := map[string]*dataset.Dataset{}
	kindOf := map[string]string{} // source name -> kind
	for _, k := range Kinds {
		var src sources.Stream
		var err error
		if o.Input != "" {
			src, err = files.New(files.Config{Name: k.Name, Dir: filepath.Join(o.Input, k.Name), Schema: k.Schema,
				MaxFilesPerBatch: 1, MaxRowsPerBatch: o.BatchEvents, LogDir: vfs.Join(ckpt, "sources", k.Name), SettleDelay: time.Millisecond})
		} else {
			src, err = generate.NewNexmarkStream(gen, k.Name)
		}
		if err != nil {
			return nil, nil, err
		}
		ds[k.Name], kindOf[src.Name()] = dataset.ReadStream(src).WithConfig(cfg), k.Name
	}
	out := q(Streams{Person: ds["person"], Auction: ds["auction"], Bid: ds["bid"], Config: gen})
	if err := out.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", o.Query, err)
	}
	return out, kindOf, nil
}

// params are what a cluster's executors rebuild a run's job from
// (StreamJob): the options that shape its streams and query, its
// checkpoint and the name of its sink.
func (o Options) params(ckpt, sink string) map[string]string {
	return map[string]string{
		"query":        o.Query,
		"events":       strconv.FormatInt(o.Events, 10),
		"input":        o.Input,
		"batch_events": strconv.FormatInt(o.BatchEvents, 10),
		"seed":         strconv.FormatUint(o.Seed, 10),
		"event_rate":   strconv.FormatFloat(o.EventRate, 'g', -1, 64),
		"checkpoint":   ckpt,
		"sink":         sink,
	}
}

// StreamJob is the job of a run on a cluster, built in an executor from
// the driver's parameters (Options.params): the stream buildStream makes
// and a sink of the driver's sink's name — the counting sink, the
// foreachBatch sink (its function runs in the driver only) or the Parquet
// sink of a directory. An executor process serves it (Commands.Executor).
func StreamJob(p map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
	var o Options
	var err error
	num := func(key string) int64 {
		v, e := strconv.ParseInt(p[key], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("parameter %s=%q: %w", key, p[key], e)
		}
		return v
	}
	o.Query, o.Input = p["query"], p["input"]
	o.Events, o.BatchEvents = num("events"), num("batch_events")
	if err != nil {
		return nil, nil, err
	}
	if o.Seed, err = strconv.ParseUint(p["seed"], 10, 64); err != nil {
		return nil, nil, fmt.Errorf("parameter seed=%q: %w", p["seed"], err)
	}
	if o.EventRate, err = strconv.ParseFloat(p["event_rate"], 64); err != nil {
		return nil, nil, fmt.Errorf("parameter event_rate=%q: %w", p["event_rate"], err)
	}
	var sink sinks.Sink
	switch name := p["sink"]; {
	case name == "count":
		sink = &countSink{}
	case name == "foreachBatch":
		sink = microbatch.ForeachBatch(func(context.Context, int64, *dataset.Dataset) error {
			return errors.New("foreachBatch: the function runs in the driver")
		})
	case strings.HasPrefix(name, "parquet:"):
		if sink, err = pqsink.NewStream(pqsink.StreamConfig{Dir: strings.TrimPrefix(name, "parquet:")}); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("sink %q: a cluster run writes to the counting sink, foreachBatch or a Parquet directory", name)
	}
	out, _, err := buildStream(o, p["checkpoint"], dataset.Config{})
	if err != nil {
		return nil, nil, err
	}
	return []sinks.Sink{sink}, []*dataset.Dataset{out}, nil
}
