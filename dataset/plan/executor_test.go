package plan_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/exec"
	"github.com/sluicedata/sluice/dataset/expr"
	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/shuffle"
)

var schema = arrow.NewSchema([]arrow.Field{{Name: "k", Type: arrow.PrimitiveTypes.Int64}}, nil)

// records makes n one-column records of size rows each: n tasks in a scan stage.
func records(mem memory.Allocator, n, rows int) []arrow.Record {
	var out []arrow.Record
	for i := 0; i < n; i++ {
		b := array.NewInt64Builder(mem)
		for j := 0; j < rows; j++ {
			b.Append(int64(i*rows + j))
		}
		col := b.NewArray()
		out = append(out, array.NewRecord(schema, []arrow.Array{col}, int64(rows)))
		col.Release()
		b.Release()
	}
	return out
}

// run compiles n for 3 shuffle partitions and runs it on a LocalExecutor;
// the caller owns the records.
func run(ctx context.Context, t *testing.T, mem memory.Allocator, n *plan.Node, funcs *exec.Funcs, workers int) ([]arrow.Record, error) {
	t.Helper()
	return runOn(ctx, t, mem, n, funcs, workers, false)
}

func runOn(ctx context.Context, t *testing.T, mem memory.Allocator, n *plan.Node, funcs *exec.Funcs, workers int, isolated bool) ([]arrow.Record, error) {
	t.Helper()
	spec, err := plan.Compile(n, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	bc := &plan.StaticCache{}
	defer bc.Release()
	bc.SetMemory(spec)
	ex := &plan.LocalExecutor{Env: plan.ExecEnv{Node: "local", Mem: mem, Job: &plan.Job{Funcs: funcs}, Broadcast: bc, Blocks: &shuffle.Local{Node: "local"}}, Isolated: isolated}
	defer ex.Close()
	return plan.Collect(ctx, ex, spec, &plan.Run{Batch: plan.NoBatch, Workers: workers})
}

func TestAggregateAcrossTasksAndPartitionsSumsEveryRowOnce(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := records(mem, 7, 100)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	mod, err := plan.NewProject(plan.NewMemoryScan(schema, recs), []*expr.Expr{expr.Col("k").Mod(5).As("g"), expr.Col("k")})
	if err != nil {
		t.Fatal(err)
	}
	agg, err := plan.NewAggregate(mod, []*expr.Expr{expr.Col("g")}, []exec.Agg{{Func: "sum", Arg: expr.Col("k"), Name: "s"}, {Func: "count", Name: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := run(context.Background(), t, mem, agg, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	var total, rows int64
	groups := 0
	for _, r := range out {
		groups += int(r.NumRows())
		for i := 0; i < int(r.NumRows()); i++ {
			total += r.Column(1).(*array.Int64).Value(i)
			rows += r.Column(2).(*array.Int64).Value(i)
		}
		r.Release()
	}
	if groups != 5 || rows != 700 || total != 699*700/2 {
		t.Fatalf("groups=%d rows=%d sum=%d; want 5, 700, %d", groups, rows, total, 699*700/2)
	}
}

// failing returns a plan whose task `bad` fails (with a panic when panics is
// set) and whose other tasks block until cancelled, counting how many ran.
func failing(t *testing.T, recs []arrow.Record, bad int64, panics bool, started *atomic.Int32) (*plan.Node, *exec.Funcs) {
	name := t.Name()
	funcs, err := (*exec.Funcs)(nil).With(&exec.Func{Name: name, Batch: func(mem memory.Allocator, in arrow.Record) (arrow.Record, error) {
		started.Add(1)
		if in.Column(0).(*array.Int64).Value(0)/100 == bad {
			if panics {
				panic("broken invariant")
			}
			return nil, errors.New("disk on fire")
		}
		time.Sleep(20 * time.Millisecond)
		in.Retain()
		return in, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return plan.NewMapBatches(plan.NewMemoryScan(schema, recs), name, schema), funcs
}

func TestATaskFailureNamesStageAndTaskAndReleasesEverything(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(map[bool]string{false: "error", true: "panic"}[panics], func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			recs := records(mem, 40, 100)
			defer func() {
				for _, r := range recs {
					r.Release()
				}
			}()
			var started atomic.Int32
			n, funcs := failing(t, recs, 3, panics, &started)
			_, err := run(context.Background(), t, mem, n, funcs, 2)
			want := "disk on fire"
			if panics {
				want = "panic: broken invariant"
			}
			if err == nil || !strings.Contains(err.Error(), "stage 0 task 3") || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v; want it to name stage 0 task 3 and %q", err, want)
			}
			if n := started.Load(); n >= 40 {
				t.Fatalf("all %d tasks ran; the failure should have stopped the stage", n)
			}
		})
	}
}

func TestCancellingTheContextStopsTheJob(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := records(mem, 200, 10)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var started atomic.Int32
	start := time.Now()
	n, funcs := failing(t, recs, -1, false, &started)
	_, err := run(ctx, t, mem, n, funcs, 2)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("job took %v after cancellation", el)
	}
}

func TestAFunctionMissingFromTheJobsRegistryFailsNamingIt(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := records(mem, 2, 10)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	var started atomic.Int32
	n, funcs := failing(t, recs, -1, false, &started)
	other, err := (*exec.Funcs)(nil).With(&exec.Func{Name: "something else", Batch: func(memory.Allocator, arrow.Record) (arrow.Record, error) {
		return nil, errors.New("not this one")
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("map_batches function %q is not registered in this job", t.Name())
	for name, funcs := range map[string]*exec.Funcs{"no registry": nil, "a registry without it": other} {
		_, err := run(context.Background(), t, mem, n, funcs, 2)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, plan.ErrPlan) {
			t.Errorf("run with %s: err = %v; want plan.ErrPlan saying %q", name, err, want)
		}
	}
	recs2, err := run(context.Background(), t, mem, n, funcs, 2)
	if err != nil {
		t.Fatalf("the same plan with the function in its registry: %v", err)
	}
	for _, r := range recs2 {
		r.Release()
	}
	if started.Load() != 2 {
		t.Fatalf("the function ran %d times, want once per record (2)", started.Load())
	}
}

// The isolated executor runs every task from its bytes against a spec
// decoded from bytes: a plan with a shuffle, partial and final aggregates
// and a sort gives the same rows as the in-process run.
func TestTheIsolatedExecutorGivesTheSameRowsAsTheLocalOne(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := records(mem, 5, 200)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	mod, err := plan.NewProject(plan.NewMemoryScan(schema, recs), []*expr.Expr{expr.Col("k").Mod(7).As("g"), expr.Col("k")})
	if err != nil {
		t.Fatal(err)
	}
	agg, err := plan.NewAggregate(mod, []*expr.Expr{expr.Col("g")}, []exec.Agg{{Func: "sum", Arg: expr.Col("k"), Name: "s"}, {Func: "max", Arg: expr.Col("k"), Name: "m"}})
	if err != nil {
		t.Fatal(err)
	}
	sorted, err := plan.NewSort(agg, []exec.SortKey{{Expr: expr.Col("g")}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got [2]string
	for i, isolated := range []bool{false, true} {
		out, err := runOn(context.Background(), t, mem, sorted, nil, 2, isolated)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, r := range out {
			for row := 0; row < int(r.NumRows()); row++ {
				for c := 0; c < int(r.NumCols()); c++ {
					fmt.Fprintf(&b, "%s ", r.Column(c).ValueStr(row))
				}
				b.WriteByte('\n')
			}
			r.Release()
		}
		got[i] = b.String()
	}
	if got[0] != got[1] || strings.Count(got[0], "\n") != 7 {
		t.Fatalf("local run:\n%s\nisolated run:\n%s", got[0], got[1])
	}
}
