package dataset_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset"
)

// Tumbling, sliding and offset windows in a batch job match window
// membership computed directly: a row at t is in every window
// [s, s+size) with s = offset + k*slide.
func TestWindowsMatchADirectComputation(t *testing.T) {
	mem, cfg := checked(t)
	tsType := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	schema := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: tsType, Nullable: true}, {Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var times []time.Time
	for i := 0; i < 400; i++ {
		ts := base.Add(time.Duration(i*7919%3600) * time.Second).Add(-30 * time.Minute) // spans midnight
		if i%41 == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
			times = append(times, ts)
		}
		b.Field(1).(*array.Int64Builder).Append(1)
	}
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	cases := []struct {
		name                string
		key                 dataset.WindowKey
		size, slide, offset time.Duration
	}{
		{"tumbling 5 minutes", dataset.Window("ts", 5*time.Minute), 5 * time.Minute, 5 * time.Minute, 0},
		{"sliding 10 minutes every 3", dataset.SlidingWindow("ts", 10*time.Minute, 3*time.Minute), 10 * time.Minute, 3 * time.Minute, 0},
		{"tumbling hours at :15", dataset.Window("ts", time.Hour).Offset(15 * time.Minute), time.Hour, time.Hour, 15 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			counts := map[time.Time]int{}
			for _, ts := range times {
				// All starts s ≡ offset (mod slide) with s <= ts < s+size.
				k := ts.Sub(time.Unix(0, 0).Add(c.offset)).Nanoseconds() / c.slide.Nanoseconds()
				for j := k + 1; j >= k-int64(c.size/c.slide)-1; j-- {
					s := time.Unix(0, 0).UTC().Add(c.offset).Add(time.Duration(j) * c.slide)
					if !s.After(ts) && ts.Before(s.Add(c.size)) {
						counts[s]++
					}
				}
			}
			var want []string
			for s, n := range counts {
				want = append(want, fmt.Sprintf("%s|%s|%d", s.Format("2006-01-02 15:04:05"), s.Add(c.size).Format("2006-01-02 15:04:05"), n))
			}
			sort.Strings(want)
			got := rows(t, dataset.FromRecords(schema, rec).WithConfig(cfg).GroupBy(c.key).Agg(dataset.CountAll().As("n")).OrderBy(dataset.WindowStart))
			if !slices.Equal(got, want) {
				t.Fatalf("%d windows, want %d\ngot  %q\nwant %q", len(got), len(want), got[:min(4, len(got))], want[:min(4, len(want))])
			}
		})
	}
}
