package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sluicedata/sluice/dataset/plan"
	"github.com/sluicedata/sluice/internal/shuffle"
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
