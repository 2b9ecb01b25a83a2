package dataset_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"

	"github.com/sluicedata/sluice/dataset"
)

var groupOut = arrow.NewSchema([]arrow.Field{
	{Name: "user", Type: arrow.BinaryTypes.String},
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ids", Type: arrow.BinaryTypes.String},
}, nil)

type groupCount struct{ N int64 }

// countIDs emits, per call, the key, the count of rows so far and the ids
// of this call's rows in the order fn saw them.
func countIDs(key dataset.Key, rows arrow.Record, st *dataset.State[groupCount], out *array.RecordBuilder) error {
	s, _ := st.Get()
	ids := rows.Column(0).(*array.Int64)
	var seen []string
	for i := 0; i < ids.Len(); i++ {
		seen = append(seen, fmt.Sprint(ids.Value(i)))
	}
	s.N += int64(rows.NumRows())
	st.Update(s)
	out.Field(0).(*array.StringBuilder).Append(key[0].(string))
	out.Field(1).(*array.Int64Builder).Append(s.N)
	out.Field(2).(*array.StringBuilder).Append(strings.Join(seen, ","))
	return nil
}

// A batch job calls the function once per key, with every row of the key
// in input order and a fresh state, across shuffle partitions.
func TestFlatMapGroupsInABatchJobCallsOncePerKeyWithAllRowsInOrder(t *testing.T) {
	mem, cfg := checked(t)
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "user", Type: arrow.BinaryTypes.String},
	}, nil)
	var recs []arrow.Record
	want := map[string][]string{}
	id := int64(0)
	for r := 0; r < 5; r++ {
		b := array.NewRecordBuilder(mem, sch)
		for i := 0; i < 9; i++ {
			u := fmt.Sprintf("u%d", (id*7)%5)
			b.Field(0).(*array.Int64Builder).Append(id)
			b.Field(1).(*array.StringBuilder).Append(u)
			want[u] = append(want[u], fmt.Sprint(id))
			id++
		}
		recs = append(recs, b.NewRecord())
		b.Release()
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	ds := dataset.FromRecords(sch, recs...).WithConfig(cfg).GroupByKey("user").
		FlatMapGroupsWithState("test.countIDs", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs))
	got := rows(t, ds)
	sort.Strings(got)
	var exp []string
	for u, ids := range want {
		exp = append(exp, fmt.Sprintf("%s|%d|%s", u, len(ids), strings.Join(ids, ",")))
	}
	sort.Strings(exp)
	if !slices.Equal(got, exp) {
		t.Fatalf("got %q\nwant %q", got, exp)
	}
	text, err := ds.Explain()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, `FlatMapGroupsWithState "test.countIDs" keys=[user] timeout=NoTimeout state_type=dataset_test.groupCount`) || !strings.Contains(text, "exchange hash([user]") {
		t.Fatalf("explain:\n%s", text)
	}
}

func otherCount(key dataset.Key, rows arrow.Record, st *dataset.State[groupCount], out *array.RecordBuilder) error {
	return nil
}

func TestFlatMapGroupsRefusesMisuse(t *testing.T) {
	sch := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "user", Type: arrow.BinaryTypes.String}}, nil)
	base := dataset.FromRecords(sch)
	// Registrations belong to a plan (issue 9): a reuse is one in the same plan.
	counted := base.GroupByKey("user").FlatMapGroupsWithState("test.countIDs", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs))
	for name, ds := range map[string]*dataset.Dataset{
		"unknown key":    base.GroupByKey("nope").FlatMapGroupsWithState("test.misuse1", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs)),
		"no key":         base.GroupByKey().FlatMapGroupsWithState("test.misuse2", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs)),
		"no name":        base.GroupByKey("user").FlatMapGroupsWithState("", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs)),
		"no schema":      base.GroupByKey("user").FlatMapGroupsWithState("test.misuse3", nil, dataset.NoTimeout, dataset.StateFunc(countIDs)),
		"bad timeout":    base.GroupByKey("user").FlatMapGroupsWithState("test.misuse4", groupOut, "Sometimes", dataset.StateFunc(countIDs)),
		"no function":    base.GroupByKey("user").FlatMapGroupsWithState("test.misuse5", groupOut, dataset.NoTimeout, dataset.GroupFunc{}),
		"name is reused": counted.GroupByKey("user").FlatMapGroupsWithState("test.countIDs", groupOut, dataset.NoTimeout, dataset.StateFunc(otherCount)),
	} {
		if ds.Err() == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// The same function under the same name again, in another plan, is
	// fine: a job function builds its plan once per run.
	again := base.GroupByKey("user").FlatMapGroupsWithState("test.countIDs", groupOut, dataset.NoTimeout, dataset.StateFunc(countIDs))
	if again.Err() != nil {
		t.Fatal(again.Err())
	}
}

type misuseState struct{}

// Timeout setters of the wrong kind fail the job with a message saying so;
// an error from the function fails it too, naming the key.
func TestFlatMapGroupsReportsStateMisuseAndFunctionErrors(t *testing.T) {
	mem, cfg := checked(t)
	sch := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "user", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(mem, sch)
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
	rec := b.NewRecord()
	b.Release()
	defer rec.Release()
	boom := errors.New("boom")
	cases := []struct {
		name    string
		timeout dataset.Timeout
		fn      dataset.GroupFunc
		want    string
	}{
		{"test.misuse.duration", dataset.EventTimeTimeout, dataset.StateFunc(func(k dataset.Key, _ arrow.Record, st *dataset.State[misuseState], _ *array.RecordBuilder) error {
			st.SetTimeoutDuration(time.Second)
			return nil
		}), "SetTimeoutDuration needs ProcessingTimeTimeout"},
		{"test.misuse.timestamp", dataset.ProcessingTimeTimeout, dataset.StateFunc(func(k dataset.Key, _ arrow.Record, st *dataset.State[misuseState], _ *array.RecordBuilder) error {
			st.SetTimeoutTimestamp(time.Now())
			return nil
		}), "SetTimeoutTimestamp needs EventTimeTimeout"},
		{"test.misuse.error", dataset.NoTimeout, dataset.StateFunc(func(k dataset.Key, _ arrow.Record, st *dataset.State[misuseState], _ *array.RecordBuilder) error {
			if k[0] == "b" {
				return boom
			}
			return nil
		}), "key [b]: boom"},
		{"test.misuse.columns", dataset.NoTimeout, dataset.StateFunc(func(k dataset.Key, _ arrow.Record, st *dataset.State[misuseState], out *array.RecordBuilder) error {
			out.Field(0).(*array.StringBuilder).Append("x")
			return nil
		}), `output column "n" has 0 values`},
	}
	for _, c := range cases {
		ds := dataset.FromRecords(sch, rec).WithConfig(cfg).GroupByKey("user").FlatMapGroupsWithState(c.name, groupOut, c.timeout, c.fn)
		_, err := ds.CollectRecords(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to say %q", c.name, err, c.want)
		}
	}
}
