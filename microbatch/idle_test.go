package microbatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
	"github.com/sluicedata/sluice/sinks"
	srcmem "github.com/sluicedata/sluice/sources/memory"
)

// idlePair is a query over two inputs, "a" (busy: three events per step)
// and "b" (silent unless a step gives it rows), unioned and counted per
// user and 10 s window in append mode, each with a 5 s watermark delay.
// Step k runs one Once batch at batch time t0 + k×10 s, restarting the
// query from its checkpoint every time.
type idlePair struct {
	t     *testing.T
	mem   *memory.CheckedAllocator
	a, b  *srcmem.Source
	fs    *vfs.Mem
	clock *setClock
	sink  *recordingSink
	idle  time.Duration // 0: no WithIdleness
	log   strings.Builder
	reg   *prometheus.Registry
	m     *microbatch.Metrics
	// gauge is sluice_idle_inputs as each batch left it (read while the
	// query runs: its gauges go when it stops).
	gauge map[int64]float64
}

func newIdlePair(t *testing.T, idle time.Duration) *idlePair {
	p := &idlePair{t: t, mem: memory.NewCheckedAllocator(memory.NewGoAllocator()), fs: vfs.NewMem(), clock: &setClock{},
		sink: newRecordingSink(), idle: idle, reg: prometheus.NewRegistry(), gauge: map[int64]float64{}}
	var err error
	if p.m, err = microbatch.NewMetrics(p.reg); err != nil {
		t.Fatal(err)
	}
	if p.a, err = srcmem.New(srcmem.Config{Name: "a", Schema: eventSchema}); err != nil {
		t.Fatal(err)
	}
	if p.b, err = srcmem.New(srcmem.Config{Name: "b", Schema: eventSchema}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.a.Close()
		p.b.Close()
		p.mem.AssertSize(t, 0)
	})
	return p
}

func (p *idlePair) job(idle time.Duration) *dataset.Dataset {
	cfg := dataset.Config{Allocator: p.mem, Parallelism: 2}
	in := func(s *srcmem.Source) *dataset.Dataset {
		ds := dataset.ReadStream(s).WithConfig(cfg).WithWatermark("ts", 5*time.Second)
		if idle > 0 {
			ds = ds.WithIdleness(idle)
		}
		return ds
	}
	return in(p.a).Union(in(p.b)).GroupBy(dataset.Window("ts", 10*time.Second), "user").Agg(dataset.CountAll().As("n"))
}

// step appends a's three events of step k (event times 10k+1, +5, +9 s)
// when busy, and b's events at the given seconds, then runs one batch at
// batch time t0 + 10k s. It returns the batch's progress (nil when no
// batch ran) and the query's error.
func (p *idlePair) step(k int, busy bool, bAt ...int) (*microbatch.Progress, error) {
	p.t.Helper()
	p.feed(k, busy, bAt...)
	return p.run(p.idle)
}

// feed appends step k's rows and sets the clock to its batch time.
func (p *idlePair) feed(k int, busy bool, bAt ...int) {
	if busy {
		s := 10 * k
		r := eventsAt(p.mem, s+1, "a", 1, s+5, "a", 1, s+9, "a", 1)
		p.a.Append(r)
		r.Release()
	}
	if len(bAt) > 0 {
		var evs []any
		for _, s := range bAt {
			evs = append(evs, s, "b", 1)
		}
		r := eventsAt(p.mem, evs...)
		p.b.Append(r)
		r.Release()
	}
	p.clock.Set(t0.Add(time.Duration(10*k) * time.Second))
}

func (p *idlePair) run(idle time.Duration) (*microbatch.Progress, error) {
	p.t.Helper()
	q, err := microbatch.WriteStream(p.job(idle), p.sink).Checkpoint("/ckpt").FS(p.fs).Clock(p.clock).
		Logger(slog.New(slog.NewTextHandler(&p.log, nil))).Metrics(p.m).OnProgress(p.observe).OutputMode(sinks.Append).Trigger(microbatch.Once()).Start(context.Background())
	if err != nil {
		return nil, err
	}
	err = q.AwaitTermination()
	return q.LastProgress(), err
}

func (p *idlePair) observe(pr microbatch.Progress) {
	fams, err := p.reg.Gather()
	if err != nil {
		p.t.Error(err)
		return
	}
	for _, f := range fams {
		if f.GetName() == "sluice_idle_inputs" && len(f.GetMetric()) == 1 {
			p.gauge[pr.Batch] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
}

// mustStep is step for a batch that must run and succeed.
func (p *idlePair) mustStep(k int, busy bool, bAt ...int) *microbatch.Progress {
	p.t.Helper()
	pr, err := p.step(k, busy, bAt...)
	if err != nil {
		p.t.Fatalf("step %d: %v", k, err)
	}
	if pr == nil || pr.Batch != int64(k) {
		p.t.Fatalf("step %d: progress %+v, want batch %d", k, pr, k)
	}
	return pr
}

func (p *idlePair) offsets(n int64) *checkpoint.OffsetEntry {
	p.t.Helper()
	c, err := checkpoint.Open(p.fs, "/ckpt")
	if err != nil {
		p.t.Fatal(err)
	}
	e, err := c.Offsets(n)
	if err != nil {
		p.t.Fatal(err)
	}
	return e
}

// at is t0 + s seconds.
func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func checkBatch(t *testing.T, pr *microbatch.Progress, wm time.Time, idle ...string) {
	t.Helper()
	if !pr.Watermark.Equal(wm) || !slices.Equal(pr.IdleInputs, idle) {
		t.Fatalf("batch %d ran with watermark %v and idle inputs %q; want %v and %q", pr.Batch, pr.Watermark, pr.IdleInputs, wm, idle)
	}
}

// windowRows is the rows the sink committed in batch n, sorted.
func (p *idlePair) windowRows(n int64) []string { return p.sink.sortedBatches()[n] }

// Without idleness, an input that never sends data holds the query's
// watermark back for good: windows never close however long the other
// input runs. That is the problem WithIdleness solves.
func TestASilentInputHoldsTheWatermarkBackWithoutIdleness(t *testing.T) {
	p := newIdlePair(t, 0)
	for k := 0; k < 10; k++ {
		if pr := p.mustStep(k, true); !pr.Watermark.IsZero() || len(pr.IdleInputs) > 0 {
			t.Fatalf("batch %d: watermark %v, idle %q; want none (input b has sent nothing)", k, pr.Watermark, pr.IdleInputs)
		}
	}
	if rows := p.sink.rows(); len(rows) != 0 {
		t.Fatalf("windows closed without a watermark: %q", rows)
	}
	if e := p.offsets(9); e.Active != nil || e.Idle != nil {
		t.Fatalf("offsets of a query without idleness record active %v, idle %v", e.Active, e.Idle)
	}
}

// With idleness 30 s, input b is left out of the watermark once it had no
// data for 30 s of batch time, and windows close by input a's watermark.
// When b sends again it rejoins at once: the watermark does not move back
// (b's rows behind it are late), and follows b while b is the slower
// input, until b has been silent for 30 s again. With both inputs idle the
// watermark stays put.
func TestAnIdleInputStopsHoldingTheWatermarkBackAndRejoinsWithData(t *testing.T) {
	p := newIdlePair(t, 30*time.Second)
	var prs []*microbatch.Progress
	for k := 0; k < 3; k++ {
		pr := p.mustStep(k, true)
		checkBatch(t, pr, time.Time{})
		prs = append(prs, pr)
	}
	if rows := p.sink.rows(); len(rows) != 0 {
		t.Fatalf("windows closed before b was idle: %q", rows)
	}
	// 30 s after the first batch: b idle, the watermark is a's, 29 s - 5 s.
	pr := p.mustStep(3, true)
	checkBatch(t, pr, at(24), "wm-1")
	prs = append(prs, pr)
	if got, want := p.windowRows(3), []string{
		fmt.Sprintf("%s|%s|a|3", ts(0), ts(10)), fmt.Sprintf("%s|%s|a|3", ts(10), ts(20)),
	}; !slices.Equal(got, want) {
		t.Fatalf("batch 3 emitted %q, want %q", got, want)
	}
	e := p.offsets(3)
	if !slices.Equal(e.Idle, []string{"wm-1"}) || e.Active["wm-1"] != t0.UnixMicro() || e.Active["wm-0"] != at(30).UnixMicro() ||
		e.Watermark != at(24).UnixMicro() {
		t.Fatalf("offsets/3: idle %q, active %v, watermark %d; want b idle since batch time 0, a active at 30 s, watermark 24 s", e.Idle, e.Active, e.Watermark)
	}
	sum, err := checkpoint.Inspect(p.fs, "/ckpt")
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "watermark  2026-11-01T00:00:24Z (idle: wm-1)") {
		t.Fatalf("checkpoint inspect does not show the idle input of batch 3:\n%s", text.String())
	}
	if !strings.Contains(p.log.String(), "input idle") || !strings.Contains(p.log.String(), "input=wm-1 sources=b") {
		t.Fatalf("log does not say wm-1 went idle:\n%s", p.log.String())
	}
	js, err := json.Marshal(pr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"idleInputs":"wm-1"`) {
		t.Fatalf("progress JSON lacks eventTime.idleInputs: %s", js)
	}
	if g, ok := p.gauge[3]; !ok || g != 1 || p.gauge[2] != 0 {
		t.Fatalf("sluice_idle_inputs after batches 2 and 3: %v; want 0 then 1", p.gauge)
	}
	for k := 4; k < 6; k++ {
		pr := p.mustStep(k, true)
		checkBatch(t, pr, at(10*k-6), "wm-1")
		prs = append(prs, pr)
	}
	// b sends again at 60 s: one row for the closed window [10 s, 20 s)
	// (late: dropped) and one at 62 s. It rejoins with no watermark yet, so
	// the watermark holds at 44 s; after the batch b's is 57 s, behind a's.
	pr = p.mustStep(6, true, 15, 62)
	checkBatch(t, pr, at(44))
	if g, ok := p.gauge[6]; !ok || g != 0 {
		t.Fatalf("sluice_idle_inputs after batch 6: %v; want 0", p.gauge)
	}
	if pr.StateOperators[0].DroppedLate != 1 {
		t.Fatalf("batch 6 dropped %d late rows, want b's row at 15 s", pr.StateOperators[0].DroppedLate)
	}
	if !strings.Contains(p.log.String(), "input active again") {
		t.Fatalf("log does not say wm-1 is active again:\n%s", p.log.String())
	}
	prs = append(prs, pr)
	for k := 7; k < 9; k++ {
		pr := p.mustStep(k, true)
		checkBatch(t, pr, at(57)) // b holds it back again: 62 s - 5 s
		prs = append(prs, pr)
	}
	pr = p.mustStep(9, true) // b silent 30 s since 60 s: a's, 89 s - 5 s
	checkBatch(t, pr, at(84), "wm-1")
	prs = append(prs, pr)
	if got := p.windowRows(9); !slices.Contains(got, fmt.Sprintf("%s|%s|b|1", ts(60), ts(70))) {
		t.Fatalf("batch 9 emitted %q; want b's window [60 s, 70 s) among them", got)
	}
	// a goes quiet too: a batch without data moves the watermark to a's
	// last (99 s - 5 s), closing windows, and then nothing moves it: no
	// more batches, whether a is idle yet (from 120 s) or not.
	pr, err = p.step(10, false)
	if err != nil || pr == nil || pr.Batch != 10 || pr.InputRows != 0 {
		t.Fatalf("step 10: %+v, %v; want a batch without input", pr, err)
	}
	checkBatch(t, pr, at(94), "wm-1")
	prs = append(prs, pr)
	for k := 11; k < 16; k++ {
		if pr, err := p.step(k, false); err != nil || pr != nil {
			t.Fatalf("step %d (both inputs quiet): %+v, %v; want no batch", k, pr, err)
		}
	}
	for i := 1; i < len(prs); i++ {
		if prs[i].Watermark.Before(prs[i-1].Watermark) {
			t.Fatalf("watermark moved back from %v (batch %d) to %v (batch %d)", prs[i-1].Watermark, prs[i-1].Batch, prs[i].Watermark, prs[i].Batch)
		}
	}
}

// ts renders t0 + s seconds as the sink renders a window bound.
func ts(s int) string { return at(s).Format("2006-01-02 15:04:05") }

// A batch whose sink commit fails is re-run on restart with the watermark
// and idle inputs its offsets recorded, not decided again: b's rows that
// arrived meanwhile (which would make b active) and a later clock change
// nothing, and the batch emits what a run without the failure emitted.
func TestARerunBatchKeepsItsRecordedIdleness(t *testing.T) {
	ref := newIdlePair(t, 30*time.Second)
	for k := 0; k < 4; k++ {
		ref.mustStep(k, true)
	}
	want := ref.windowRows(3)
	if len(want) == 0 {
		t.Fatal("the reference run emitted nothing in batch 3")
	}

	p := newIdlePair(t, 30*time.Second)
	for k := 0; k < 3; k++ {
		p.mustStep(k, true)
	}
	boom := errors.New("sink down")
	p.sink.failNext = boom
	if _, err := p.step(3, true); !errors.Is(err, boom) || !strings.Contains(err.Error(), "batch 3") {
		t.Fatalf("step 3: %v; want the sink's failure naming batch 3", err)
	}
	if e := p.offsets(3); !slices.Equal(e.Idle, []string{"wm-1"}) {
		t.Fatalf("offsets/3 idle %q, want wm-1", e.Idle)
	}
	// b has data now, and the restart comes 5 s later: deciding batch 3
	// again would find b active and no watermark.
	r := eventsAt(p.mem, 40, "b", 1)
	p.b.Append(r)
	r.Release()
	p.clock.Set(at(35))
	if _, err := p.run(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := p.windowRows(3); !slices.Equal(got, want) {
		t.Fatalf("re-run batch 3 emitted %q, want %q as without the failure", got, want)
	}
	if e := p.offsets(3); e.Watermark != at(24).UnixMicro() {
		t.Fatalf("offsets/3 watermark %d, want 24 s", e.Watermark)
	}
	// The batch after it (b's row) is planned anew: b active, not idle.
	if e := p.offsets(4); len(e.Idle) != 0 || e.Active["wm-1"] != at(35).UnixMicro() {
		t.Fatalf("offsets/4: idle %q, active %v; want b active at 35 s", e.Idle, e.Active)
	}
}

// A checkpoint written before idleness existed (offsets without active_us)
// runs on with WithIdleness: idleness is counted from the first batch that
// records it, so b is idle 30 s after that batch, not after batch 0.
func TestIdlenessCountsFromTheFirstBatchThatRecordsIt(t *testing.T) {
	p := newIdlePair(t, 0)
	for k := 0; k < 3; k++ {
		p.mustStep(k, true)
	}
	if e := p.offsets(2); e.Active != nil {
		t.Fatalf("offsets/2 without idleness record active %v", e.Active)
	}
	p.idle = 30 * time.Second
	for k := 3; k < 6; k++ {
		checkBatch(t, p.mustStep(k, true), time.Time{})
	}
	checkBatch(t, p.mustStep(6, true), at(54), "wm-1")
}

// idleScript is TestAnIdleInputStopsHoldingTheWatermarkBackAndRejoinsWithData's
// input: b silent until step 6, then one late row and one on time.
var idleScript = []struct {
	busy bool
	bAt  []int
}{{busy: true}, {busy: true}, {busy: true}, {busy: true}, {busy: true}, {busy: true},
	{busy: true, bAt: []int{15, 62}}, {busy: true}, {busy: true}, {busy: true}, {busy: false}}

// settle runs the query at the current batch time until a run has nothing
// to do: the step's data batch, then the no-data batch an input turning
// idle may earn. A restart after a failure is one more run of the same
// loop, so a run that failed and one that did not reach the same batches.
func (p *idlePair) settle() error {
	for range 5 {
		pr, err := p.run(p.idle)
		if err != nil || pr == nil {
			return err
		}
	}
	return fmt.Errorf("the query still runs batches after 5 runs at %v", p.clock.Now())
}

// The idle-input query fails at every durable step of its run in turn,
// "crashes" (unsynced writes lost) and restarts at the same batch time:
// every batch runs with the watermark and idle inputs of the run that never
// failed and emits the same rows (the recording sink also refuses a
// re-commit with other rows).
func TestIdleInputsSurviveACrashAtEveryDurableStep(t *testing.T) {
	ref := newIdlePair(t, 30*time.Second)
	for k, st := range idleScript {
		ref.feed(k, st.busy, st.bAt...)
		if err := ref.settle(); err != nil {
			t.Fatal(err)
		}
	}
	want := ref.sink.sortedBatches()
	offsets := func(p *idlePair) (out []string) {
		for n := range int64(len(want)) {
			e := p.offsets(n)
			out = append(out, fmt.Sprintf("batch %d at %d: watermark %d idle %q active %v", n, e.Timestamp, e.Watermark, e.Idle, e.Active))
		}
		return out
	}
	refOffsets := offsets(ref)
	if len(want) <= len(idleScript) {
		t.Fatalf("reference run: %d batches for %d steps; the test needs the no-data batches idleness earns", len(want), len(idleScript))
	}
	steps := ref.fs.Mutations()
	injected := errors.New("injected disk failure")
	for n := 0; n < steps; n++ {
		p := newIdlePair(t, 30*time.Second)
		p.fs.FailAfter(n, injected)
		failed := false
		for k, st := range idleScript {
			p.feed(k, st.busy, st.bAt...)
			err := p.settle()
			if err == nil {
				continue
			}
			if failed || !errors.Is(err, injected) {
				t.Fatalf("failure at step %d: batch time %d s: %v; want the one injected failure", n, 10*k, err)
			}
			failed = true
			p.fs.Crash()
			p.fs.FailAfter(-1, nil)
			if err := p.settle(); err != nil {
				t.Fatalf("failure at step %d: restart at batch time %d s: %v", n, 10*k, err)
			}
		}
		if !failed {
			t.Fatalf("failure at step %d: nothing failed", n)
		}
		if g := offsets(p); !slices.Equal(g, refOffsets) {
			t.Fatalf("failure at step %d: offsets\n%s\nwant\n%s", n, strings.Join(g, "\n"), strings.Join(refOffsets, "\n"))
		}
		got := p.sink.sortedBatches()
		if len(got) != len(want) {
			t.Fatalf("failure at step %d: %d batches, want %d", n, len(got), len(want))
		}
		for b, rows := range want {
			if !slices.Equal(got[b], rows) {
				t.Fatalf("failure at step %d: batch %d emitted %q, want %q", n, b, got[b], rows)
			}
		}
	}
	t.Logf("%d durable steps failed in turn; %d batches", steps, len(want))
}
