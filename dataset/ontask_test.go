package dataset_test

import (
	"sync"
	"testing"

	"github.com/sluicedata/sluice/dataset"
)

// Config.OnTask is a progress bar's hook: it counts every task of every
// stage of a batch action, one call at a time, up to the spec's total.
func TestOnTaskCountsEveryTaskOfABatchAction(t *testing.T) {
	_, cfg := checked(t)
	type row struct {
		K string
		V int64
	}
	var in []row
	for i := range 100 {
		in = append(in, row{K: string(rune('a' + i%5)), V: int64(i)})
	}
	var mu sync.Mutex
	var calls [][2]int
	inCall := false
	cfg.OnTask = func(done, total int) {
		mu.Lock()
		if inCall {
			t.Error("OnTask called while another call runs")
		}
		inCall = true
		calls = append(calls, [2]int{done, total})
		inCall = false
		mu.Unlock()
	}
	ds := dataset.FromStructs(in).WithConfig(cfg).GroupBy("k").Agg(dataset.Sum(dataset.Col("v")).As("s"))
	spec, err := ds.Compile()
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, st := range spec.Stages {
		want += st.Tasks
	}
	if got := rows(t, ds); len(got) != 5 {
		t.Fatalf("groups: %v", got)
	}
	if want < 2 || len(calls) != want {
		t.Fatalf("%d calls for %d tasks: %v", len(calls), want, calls)
	}
	for i, c := range calls {
		if c != [2]int{i + 1, want} {
			t.Fatalf("call %d is %v, want [%d %d]: %v", i, c, i+1, want, calls)
		}
	}
}
