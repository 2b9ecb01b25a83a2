package dataset

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/sinks"
	"github.com/sluicedata/sluice/sources"
)

// ReadStream makes a Dataset over a streaming source. It is run by package
// microbatch, one micro-batch at a time; batch actions (Collect, Write) refuse it.
func ReadStream(src sources.Stream) *Dataset {
	return &Dataset{node: plan.NewStreamScan(src)}
}

// Streams lists the streaming sources the Dataset reads (none for a batch
// Dataset), in plan order.
func (d *Dataset) Streams() []sources.Stream {
	if d.err != nil {
		return nil
	}
	return plan.Streams(d.node)
}

// Watermark is one WithWatermark declaration of a streaming Dataset.
type Watermark struct {
	ID          string // "wm-0", ... in plan order: the key of its watermark in checkpoints
	Column      string
	DelayMicros int64
}

// Watermarks lists the WithWatermark declarations in plan order.
func (d *Dataset) Watermarks() []Watermark {
	if d.err != nil {
		return nil
	}
	ids := plan.WatermarkIDs(d.node)
	var out []Watermark
	d.node.Walk(func(n *plan.Node) {
		if n.Kind == plan.KindWatermark {
			out = append(out, Watermark{ID: ids[n.Watermark], Column: n.Watermark.Column, DelayMicros: n.Watermark.DelayMicros})
		}
	})
	return out
}

// IsStreaming reports whether the Dataset reads a streaming source.
func (d *Dataset) IsStreaming() bool { return len(d.Streams()) > 0 }

// Stateful lists the plan's operators that keep state across micro-batches
// (aggregates, joins, distinct), as EXPLAIN text, for the driver's checks
// and messages. Checkpoints pin StatefulOperators, never this text.
func (d *Dataset) Stateful() []string {
	if d.err != nil {
		return nil
	}
	var out []string
	d.node.Walk(func(n *plan.Node) {
		if n.Kind == plan.KindGroups {
			out = append(out, plan.Format(&plan.Node{Kind: n.Kind, Groups: n.Groups}))
			return
		}
		if n.Kind == plan.KindJoin && (len(plan.Streams(n.Inputs[0])) == 0 || len(plan.Streams(n.Inputs[1])) == 0) {
			return // a stream joined with a bounded Dataset keeps no state
		}
		switch n.Kind {
		case plan.KindAggregate, plan.KindJoin, plan.KindSort, plan.KindLimit, plan.KindWindow, plan.KindDedup, plan.KindSession:
			out = append(out, plan.Format(&plan.Node{Kind: n.Kind, Keys: n.Keys, Aggs: n.Aggs, Join: n.Join, SortKeys: n.SortKeys, N: n.N, Window: n.Window, DedupKeys: n.DedupKeys, Session: n.Session}))
		}
	})
	return out
}

// StatefulOperators lists the stateful operators a streaming query of d
// runs with keyGroups key groups, as typed facts (kind, operator id, key
// and value schemas; see plan.StatefulOp), in operator-id order: what a
// checkpoint pins. It plans d the way a micro-batch does and returns its
// planning error, if any.
func (d *Dataset) StatefulOperators(keyGroups int) ([]plan.StatefulOp, error) {
	if d.err != nil {
		return nil, d.err
	}
	return plan.StatefulOperators(plan.BindStreams(d.node, nil), keyGroups)
}

// RunBatch runs the plan once over the given splits of each stream (by
// source name) and writes the output through sink for batch b. It returns
// the tasks' commit messages in task order; committing them is the caller's
// (the micro-batch driver's) job. Package microbatch calls it; it is not
// meant for jobs.
func (d *Dataset) RunBatch(ctx context.Context, splits map[string][]sources.Split, sink sinks.Sink, b sinks.Batch, st *StreamState) ([]sinks.CommitMessage, error) {
	if d.err != nil {
		return nil, d.err
	}
	root := plan.NewSinkWrite(plan.BindStreams(d.node, splits), sink, b)
	recs, err := d.runStream(ctx, root, st)
	if err != nil {
		return nil, err
	}
	defer releaseAll(recs)
	var msgs []sinks.CommitMessage
	for _, r := range recs {
		col := r.Column(0).(*array.Binary)
		for i := 0; i < col.Len(); i++ {
			msgs = append(msgs, append(sinks.CommitMessage(nil), col.Value(i)...))
		}
	}
	return msgs, nil
}

// StreamState places the state of a streaming query's stateful operators
// for one micro-batch (see plan.StreamState).
type StreamState = plan.StreamState

// StaticCache keeps the bounded sides of a streaming query's stream-static
// joins between micro-batches (see plan.StaticCache); the query owns it.
type StaticCache = plan.StaticCache

// ExplainBatch is Explain for one micro-batch of a streaming Dataset.
func (d *Dataset) ExplainBatch(splits map[string][]sources.Split, st *StreamState) (string, error) {
	if d.err != nil {
		return "", d.err
	}
	return d.explain(plan.BindStreams(d.node, splits), st)
}

var errStreaming = fmt.Errorf("dataset: this Dataset reads a stream; run it with microbatch.WriteStream")

func (d *Dataset) checkBatch() error {
	if d.err != nil {
		return d.err
	}
	if d.IsStreaming() {
		return errStreaming
	}
	return nil
}
