package jobcli

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/sources/generate"
)

// A query that fails ends the stream role with its error, said once (Stop
// returns it again for that query), while the other query is stopped.
func TestAFailingQueryEndsTheStreamWithItsErrorOnce(t *testing.T) {
	boom := errors.New("boom in the sink")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job := Job{Name: "failing", Stream: func(ctx context.Context, env *Env) error {
		for _, name := range []string{"fails", "runs"} {
			src, err := generate.NewRate(generate.RateConfig{RowsPerSecond: 1000})
			if err != nil {
				return err
			}
			sink := microbatch.ForeachBatch(func(context.Context, int64, *dataset.Dataset) error {
				if name == "fails" {
					return boom
				}
				return nil
			})
			if _, err := env.Start(ctx, microbatch.WriteStream(dataset.ReadStream(src), sink), QueryOptions{Name: name, Every: 50 * time.Millisecond}); err != nil {
				return err
			}
		}
		return nil
	}}
	err := Run(ctx, job, []string{"stream", "--ui-addr", ""}, io.Discard, io.Discard)
	if !errors.Is(err, boom) || strings.Count(err.Error(), boom.Error()) != 1 {
		t.Fatalf("stream with a failing query: %v, want %q said once", err, boom)
	}
}
