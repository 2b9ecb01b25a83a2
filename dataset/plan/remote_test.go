package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/scheduler"
)

func TestATaskServerRefusesTheTasksOfADriverANewerOneReplaced(t *testing.T) {
	srv := &plan.TaskServer{Jobs: func(map[string]string) (*plan.Job, error) { return &plan.Job{}, nil }}
	run := func(query string, epoch int64) error {
		b, _ := json.Marshal(plan.TaskRequest{SpecID: "s", Query: query, Epoch: epoch})
		_, err := srv.RunTask(context.Background(), b, shuffle.Env{Node: "n", Blocks: &shuffle.Local{}})
		return err
	}
	// The spec was never sent: every task that passes the fence fails
	// for that, which says the fence let it through.
	for _, c := range []struct {
		query  string
		epoch  int64
		fenced bool
	}{{"q", 2, false}, {"q", 1, true}, {"other", 1, false}, {"q", 3, false}, {"q", 2, true}, {"q", 3, false}} {
		err := run(c.query, c.epoch)
		if got := errors.Is(err, plan.ErrFenced); got != c.fenced {
			t.Fatalf("query %s epoch %d: err = %v, want fenced %v", c.query, c.epoch, err, c.fenced)
		}
		if !c.fenced && !errors.Is(err, plan.ErrUnknownSpec) {
			t.Fatalf("query %s epoch %d: err = %v, want the unknown spec past the fence", c.query, c.epoch, err)
		}
		if c.fenced && !strings.Contains(err.Error(), "took over") {
			t.Fatalf("err = %v, want it to say a newer driver took over", err)
		}
	}
}

// fenceDispatcher is a cluster of one executor whose every task answer is
// the fence, as text, the way an executor's error crosses the wire.
type fenceDispatcher struct{}

func (fenceDispatcher) Nodes(context.Context) ([]scheduler.Node, error) {
	return []scheduler.Node{{Name: "e1", Slots: 1}}, nil
}

func (fenceDispatcher) RunTask(context.Context, string, string, []byte) ([]byte, error) {
	return nil, errors.New("on node e1: query q: this driver's epoch is 1, a driver of epoch 2 took over: " + plan.ErrFenced.Error())
}

func (fenceDispatcher) Fetch(context.Context, string, []scheduler.Location) ([]arrow.Record, error) {
	return nil, nil
}
func (fenceDispatcher) Release(string, int) {}
func (fenceDispatcher) Serve(string, func(string) ([]arrow.Record, bool)) func() {
	return func() {}
}

// A driver learns it was fenced from its executors' text: the error it
// gets matches plan.ErrFenced, so the query can say why it stopped.
func TestARemoteRunFencedByItsExecutorsFailsWithErrFenced(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := records(mem, 1, 10)
	defer recs[0].Release()
	spec, err := plan.Compile(plan.NewMemoryScan(schema, recs), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	ex := &plan.RemoteExecutor{D: fenceDispatcher{}, MaxAttempts: 1, Query: "q", Epoch: 1}
	defer ex.Close()
	_, err = ex.Execute(context.Background(), spec, &plan.Run{Batch: plan.NoBatch})
	if !errors.Is(err, plan.ErrFenced) || !strings.Contains(err.Error(), "took over") {
		t.Fatalf("err = %v, want one matching plan.ErrFenced that says a newer driver took over", err)
	}
}
