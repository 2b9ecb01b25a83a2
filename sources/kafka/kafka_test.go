package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicedata/sluice/sources"
	"github.com/sluicedata/sluice/sources/kafka"
)

func TestReadCommittedSkipsAbortedRecordsAndMarkers(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "tx", 2)
		b.produce(t, rec(tp, 0, "a"), rec(tp, 0, "b"))             // p0 @0,1
		b.txn(t, true, rec(tp, 0, "c"), rec(tp, 1, "x"))           // p0 @2 +marker@3; p1 @0 +marker@1
		b.txn(t, false, rec(tp, 0, "aborted"), rec(tp, 1, "gone")) // p0 @4 +marker@5; p1 @2 +marker@3
		b.produce(t, rec(tp, 0, "d"))                              // p0 @6

		s := newSource(t, b, kafka.Config{Topics: []string{tp}})
		start := initial(t, s)
		if got := unprefix(b, start); got != `{"t":{"tx":{"0":0,"1":0}}}` {
			t.Fatalf("initial %s", got)
		}
		end, rows := batchUntil(t, b, s, start, 5)
		// p1 ends with an aborted record and its marker: the read stops at
		// the end offset all the same. (A real broker writes transaction
		// markers asynchronously after EndTransaction, so exact offsets are
		// pinned on kfake only.)
		if got := unprefix(b, end); b.exactOffsets() && got != `{"t":{"tx":{"0":7,"1":4}}}` {
			t.Errorf("end %s", got)
		}
		b.want(t, "rows", rows, []string{"tx/0@0=a", "tx/0@1=b", "tx/0@2=c", "tx/0@6=d", "tx/1@0=x"})

		// An open transaction holds the batch end at the last stable offset.
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.TransactionalID(b.prefix+"open"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(context.Background(), rec(tp, 0, "open")).FirstErr(); err != nil {
			t.Fatal(err)
		}
		b.produce(t, rec(tp, 0, "after-open"))
		end2, rows := batch(t, b, s, end)
		if string(end2) != string(end) || len(rows) != 0 {
			t.Errorf("with an open transaction: end %s rows %v, want %s and none", end2, rows, end)
		}
		if err := cl.EndTransaction(context.Background(), kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		end3, rows := batchUntil(t, b, s, end2, 2)
		b.want(t, "rows after commit", rows, []string{"tx/0@7=open", "tx/0@8=after-open"})
		if got := unprefix(b, end3); b.exactOffsets() && got != `{"t":{"tx":{"0":10,"1":4}}}` {
			t.Errorf("end after commit %s", got)
		}

		// read_uncommitted sees the aborted records too.
		u := newSource(t, b, kafka.Config{Topics: []string{tp}, ReadUncommitted: true})
		_, rows = batch(t, b, u, initial(t, u))
		b.want(t, "uncommitted rows", rows, []string{"tx/0@0=a", "tx/0@1=b", "tx/0@2=c", "tx/0@4=aborted", "tx/0@6=d",
			"tx/0@7=open", "tx/0@8=after-open", "tx/1@0=x", "tx/1@2=gone"})
	})
}

func TestRateLimitSpreadsByLag(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "lag", 3)
		var recs []*kgo.Record
		for p, n := range []int{60, 30, 10} {
			for i := range n {
				recs = append(recs, rec(tp, int32(p), fmt.Sprint(i)))
			}
		}
		b.produce(t, recs...)
		s := newSource(t, b, kafka.Config{Topics: []string{tp}, MaxOffsetsPerBatch: 10, MaxOffsetsPerSplit: 4})
		start := initial(t, s)
		wantEnds := []string{
			`{"t":{"lag":{"0":6,"1":3,"2":1}}}`,  // 60:30:10
			`{"t":{"lag":{"0":12,"1":6,"2":2}}}`, // lags 54:27:9, same shares
		}
		total := 0
		for i, w := range wantEnds {
			end, rows := batch(t, b, s, start)
			if got := unprefix(b, end); got != w {
				t.Errorf("batch %d: end %s, want %s", i, got, w)
			}
			if len(rows) != 10 {
				t.Errorf("batch %d: %d rows, want 10", i, len(rows))
			}
			total += len(rows)
			start = end
		}
		splits, err := s.Splits(context.Background(), sources.Offset(strings.ReplaceAll(`{"t":{"lag":{"0":0,"1":0,"2":0}}}`, `"lag"`, `"`+tp+`"`)), start)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, sp := range splits {
			got = append(got, strings.TrimPrefix(fmt.Sprint(sp), b.prefix))
		}
		want(t, "splits of at most 4 offsets", got, []string{"lag/0[0,4)", "lag/0[4,8)", "lag/0[8,12)", "lag/1[0,4)", "lag/1[4,6)", "lag/2[0,2)"})
		for start != nil {
			end, rows := batch(t, b, s, start)
			total += len(rows)
			if string(end) == string(start) {
				break
			}
			start = end
		}
		if total != 100 {
			t.Errorf("%d rows in all, want 100", total)
		}
	})
}

func TestNewPartitionsStartAtEarliest(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "grow", 1)
		b.produce(t, rec(tp, 0, "a"))
		s := newSource(t, b, kafka.Config{Topics: []string{tp}})
		end, rows := batch(t, b, s, initial(t, s))
		want(t, "first batch", rows, []string{"grow/0@0=a"})
		if _, err := b.adm.CreatePartitions(context.Background(), 2, tp); err != nil {
			t.Fatal(err)
		}
		waitPartitions(t, b, tp, 3)
		b.produce(t, rec(tp, 1, "b"), rec(tp, 1, "c"))
		end2, rows := batch(t, b, s, end)
		want(t, "second batch", rows, []string{"grow/1@0=b", "grow/1@1=c"})
		// partition 2 is empty: left out until it has data
		if got := unprefix(b, end2); got != `{"t":{"grow":{"0":1,"1":2}},"new":{"grow":{"1":0}}}` {
			t.Errorf("end %s", got)
		}
		b.produce(t, rec(tp, 2, "d"))
		_, rows = batch(t, b, s, end2)
		want(t, "third batch", rows, []string{"grow/2@0=d"})
	})
}

func waitPartitions(t *testing.T, b *backend, tp string, n int) {
	t.Helper()
	for i := 0; ; i++ {
		td, err := b.adm.ListTopics(context.Background(), tp)
		if err == nil && len(td[tp].Partitions) == n {
			return
		}
		if i > 100 {
			t.Fatalf("topic %s never got %d partitions", tp, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTopicRegexFindsNewTopics(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		a := b.topic(t, "ev-a", 1)
		b.topic(t, "other", 1)
		b.produce(t, rec(a, 0, "1"), rec(b.prefix+"other", 0, "no"))
		s := newSource(t, b, kafka.Config{TopicRegex: b.prefix + "ev-.*"})
		end, rows := batch(t, b, s, initial(t, s))
		want(t, "first batch", rows, []string{"ev-a/0@0=1"})
		c := b.topic(t, "ev-c", 1)
		b.produce(t, rec(c, 0, "2"), rec(a, 0, "3"))
		_, rows = batch(t, b, s, end)
		want(t, "second batch", rows, []string{"ev-a/0@1=3", "ev-c/0@0=2"})
	})
}

func TestStartingOffsets(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "start", 2)
		base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		for i := range 4 {
			r := rec(tp, 0, fmt.Sprint(i))
			r.Timestamp = base.Add(time.Duration(i) * time.Minute)
			b.produce(t, r)
		}
		r := rec(tp, 1, "p1")
		r.Timestamp = base
		b.produce(t, r)
		cases := []struct {
			name, starting string
			rows           []string
		}{
			{"earliest reads everything", "earliest", []string{"start/0@0=0", "start/0@1=1", "start/0@2=2", "start/0@3=3", "start/1@0=p1"}},
			{"latest reads nothing already there", "latest", nil},
			{"a time starts at the first record at or after it", base.Add(90 * time.Second).Format(time.RFC3339), []string{"start/0@2=2", "start/0@3=3"}},
			{"a map names offsets, -1 latest, the rest earliest", fmt.Sprintf(`{%q:{"0":3}}`, tp), []string{"start/0@3=3", "start/1@0=p1"}},
			{"a map with latest", fmt.Sprintf(`{%q:{"0":-2,"1":-1}}`, tp), []string{"start/0@0=0", "start/0@1=1", "start/0@2=2", "start/0@3=3"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := newSource(t, b, kafka.Config{Topics: []string{tp}, StartingOffsets: tc.starting})
				_, rows := batch(t, b, s, initial(t, s))
				want(t, "rows", rows, tc.rows)
			})
		}
	})
}

func TestEndingOffsetsAndBound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "end", 1)
		b.produce(t, rec(tp, 0, "a"), rec(tp, 0, "b"))
		s := newSource(t, b, kafka.Config{Topics: []string{tp}, EndingOffsets: "latest"})
		start := initial(t, s) // captures the end
		b.produce(t, rec(tp, 0, "late"))
		end, rows := batch(t, b, s, start)
		want(t, "bounded at start", rows, []string{"end/0@0=a", "end/0@1=b"})
		if again, _ := s.Latest(context.Background(), end); string(again) != string(end) {
			t.Errorf("latest moved past the bound: %s", again)
		}

		explicit := newSource(t, b, kafka.Config{Topics: []string{tp}, EndingOffsets: fmt.Sprintf(`{%q:{"0":1}}`, tp)})
		_, rows = batch(t, b, explicit, initial(t, explicit))
		want(t, "explicit end", rows, []string{"end/0@0=a"})

		u := newSource(t, b, kafka.Config{Topics: []string{tp}})
		st := initial(t, u)
		if err := u.Bound(context.Background()); err != nil {
			t.Fatal(err)
		}
		b.produce(t, rec(tp, 0, "after-bound"))
		_, rows = batch(t, b, u, st)
		want(t, "after Bound", rows, []string{"end/0@0=a", "end/0@1=b", "end/0@2=late"})
	})
}

// orderSchema covers every value type.
var orderSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "qty", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "customer", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "paid", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "day", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "amount", Type: &arrow.Decimal128Type{Precision: 10, Scale: 2}, Nullable: true},
}, nil)

func TestJSONValuesAndBadRecordPolicies(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "json", 1)
		b.produce(t,
			rec(tp, 0, `{"id":1,"qty":2,"price":9.5,"customer":"ann\u00e9","paid":true,"ts":"2026-11-01T00:00:01Z","day":"2026-11-01","amount":"12.30","extra":{"x":[1,2]}}`),
			rec(tp, 0, `{"id":2,"qty":null,"ts":1793491200000,"amount":7}`),
			rec(tp, 0, `{"id":3,"qty":"two"}`), // bad: wrong type
			rec(tp, 0, `{"id":4`),              // bad: malformed
			rec(tp, 0, `{"qty":1}`),            // bad: id is not nullable
			rec(tp, 0, `{"id":6,"customer":"z"}`),
		)
		good := []string{
			"json/0@0=id:1 qty:2 price:9.5 customer:anné paid:true ts:2026-11-01 00:00:01Z day:2026-11-01 amount:12.3",
			"json/0@1=id:2 qty:(null) price:(null) customer:(null) paid:(null) ts:2026-11-01 00:00:00Z day:(null) amount:7",
			"json/0@5=id:6 qty:(null) price:(null) customer:z paid:(null) ts:(null) day:(null) amount:(null)",
		}
		cfg := kafka.Config{Topics: []string{tp}, ValueSchema: orderSchema}

		t.Run("fail names topic, partition and offset", func(t *testing.T) {
			s := newSource(t, b, cfg)
			start := initial(t, s)
			end, _ := s.Latest(context.Background(), start)
			_, err := tryRead(b, s, start, end)
			if !errors.Is(err, kafka.ErrBadRecord) || !strings.Contains(err.Error(), fmt.Sprintf("topic %q partition 0 offset 2", tp)) {
				t.Errorf("err = %v", err)
			}
		})
		t.Run("skip counts", func(t *testing.T) {
			c := cfg
			c.BadRecords = kafka.BadRecordsSkip
			s := newSource(t, b, c)
			start := initial(t, s)
			end, _ := s.Latest(context.Background(), start)
			rows, err := tryRead(b, s, start, end)
			if err != nil {
				t.Fatal(err)
			}
			want(t, "rows", rows, good)
			if st := s.Stats(); st.BadRecordsSkipped != 3 {
				t.Errorf("stats %+v", st)
			}
		})
		t.Run("ReadColumns builds only the columns asked for, with Read's values", func(t *testing.T) {
			c := cfg
			c.BadRecords = kafka.BadRecordsSkip
			s := newSource(t, b, c)
			start := initial(t, s)
			end, _ := s.Latest(context.Background(), start)
			splits, err := s.Splits(context.Background(), start, end)
			if err != nil {
				t.Fatal(err)
			}
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			render := func(r arrow.Record, cols []string) []string {
				var out []string
				for i := 0; i < int(r.NumRows()); i++ {
					var cells []string
					for _, c := range cols {
						cells = append(cells, c+":"+r.Column(r.Schema().FieldIndices(c)[0]).ValueStr(i))
					}
					out = append(out, strings.Join(cells, " "))
				}
				return out
			}
			cols := []string{"id", "customer", "offset"} // schema order: value fields, then metadata
			var all, some []string
			for _, sp := range splits {
				err := sp.Read(context.Background(), mem, func(r arrow.Record) error {
					all = append(all, render(r, cols)...)
					r.Release()
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				err = sp.(sources.ColumnReader).ReadColumns(context.Background(), mem, cols, func(r arrow.Record) error {
					if r.NumCols() != int64(len(cols)) {
						t.Errorf("ReadColumns(%v) built %s", cols, r.Schema())
					}
					some = append(some, render(r, cols)...)
					r.Release()
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(all) != 3 || fmt.Sprint(all) != fmt.Sprint(some) {
				t.Errorf("Read: %q\nReadColumns: %q", all, some)
			}
		})
		t.Run("dead-letter hands bad records over", func(t *testing.T) {
			var mu sync.Mutex
			var dead []string
			c := cfg
			c.BadRecords = kafka.BadRecordsDeadLetter
			c.DeadLetter = func(_ context.Context, r kafka.BadRecord) error {
				mu.Lock()
				defer mu.Unlock()
				dead = append(dead, fmt.Sprintf("%d %s: %v", r.Offset, r.Value, r.Err))
				return nil
			}
			s := newSource(t, b, c)
			start := initial(t, s)
			end, _ := s.Latest(context.Background(), start)
			rows, err := tryRead(b, s, start, end)
			if err != nil {
				t.Fatal(err)
			}
			want(t, "rows", rows, good)
			want(t, "dead letters", dead, []string{
				`2 {"id":3,"qty":"two"}: field "qty": want an integer at byte 14`,
				`3 {"id":4: malformed JSON: want ',' or '}', got end of value`,
				`4 {"qty":1}: field "id" is missing or null but not nullable`,
			})
			if st := s.Stats(); st.BadRecordsDeadLettered != 3 {
				t.Errorf("stats %+v", st)
			}
		})
	})
}

func TestOffsetsGone(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "gone", 1)
		for i := range 10 {
			b.produce(t, rec(tp, 0, fmt.Sprint(i)))
		}
		failing := newSource(t, b, kafka.Config{Topics: []string{tp}})
		skipping := newSource(t, b, kafka.Config{Topics: []string{tp}, OffsetsGone: kafka.OffsetsGoneSkip})
		start := initial(t, failing)
		end, err := failing.Latest(context.Background(), start)
		if err != nil {
			t.Fatal(err)
		}
		os := make(kadm.Offsets)
		os.AddOffset(tp, 0, 6, -1)
		if resp, err := b.adm.DeleteRecords(context.Background(), os); err != nil || resp.Error() != nil {
			t.Fatalf("delete records: %v %v", err, resp.Error())
		}
		_, err = tryRead(b, failing, start, end)
		if !errors.Is(err, sources.ErrOffsetGone) || !strings.Contains(err.Error(), fmt.Sprintf("topic %q partition 0: offsets 0..5 were deleted", tp)) {
			t.Errorf("err = %v", err)
		}
		rows, err := tryRead(b, skipping, start, end)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "rows", rows, []string{"gone/0@6=6", "gone/0@7=7", "gone/0@8=8", "gone/0@9=9"})
		if st := skipping.Stats(); st.OffsetsLost != 6 {
			t.Errorf("stats %+v", st)
		}
		// Splits found the loss, so the driver reports it with the batch.
		drops := skipping.Drops(start, end)
		if len(drops) != 1 || drops[0].Kind != sources.DropLost || drops[0].Input != fmt.Sprintf("topic %q partition 0 offsets 0..5", tp) || drops[0].Count != 6 ||
			!strings.Contains(drops[0].Reason, "log now starts at 6") {
			t.Errorf("drops %+v", drops)
		}
		if d := failing.Drops(start, end); d != nil {
			t.Errorf("drops under the fail policy: %+v", d)
		}
	})
}

func TestCommitGroup(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "commit", 2)
		b.produce(t, rec(tp, 0, "a"), rec(tp, 1, "b"), rec(tp, 1, "c"))
		group := b.prefix + "lag"
		s := newSource(t, b, kafka.Config{Topics: []string{tp}, CommitGroup: group})
		end, _ := batch(t, b, s, initial(t, s))
		if err := s.Commit(context.Background(), end); err != nil {
			t.Fatal(err)
		}
		resp, err := b.adm.FetchOffsets(context.Background(), group)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		resp.Offsets().Each(func(o kadm.Offset) {
			got = append(got, fmt.Sprintf("%s/%d=%d", strings.TrimPrefix(o.Topic, b.prefix), o.Partition, o.At))
		})
		want(t, "group offsets", sorted(got), []string{"commit/0=1", "commit/1=2"})
	})
}

func TestBadOffsetsAreRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *backend) {
		tp := b.topic(t, "bad", 1)
		s := newSource(t, b, kafka.Config{Topics: []string{tp}})
		for _, o := range []string{`{}`, `{"pos":1}`, `{"t":{"x":{"a":1}}}`, `{"t":{"x":{"0":-1}}}`, `not json`} {
			if _, err := s.Latest(context.Background(), sources.Offset(o)); !errors.Is(err, sources.ErrBadOffset) {
				t.Errorf("latest(%s): err = %v", o, err)
			}
		}
		_, err := s.Splits(context.Background(), sources.Offset(`{"t":{"x":{"0":5}}}`), sources.Offset(`{"t":{"x":{"0":3}}}`))
		if !errors.Is(err, sources.ErrBadOffset) {
			t.Errorf("end before start: err = %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := kafka.Config{Brokers: []string{"b:9092"}, Topics: []string{"t"}}
	bad := map[string]func(c *kafka.Config){
		"no brokers":               func(c *kafka.Config) { c.Brokers = nil },
		"topics and regex":         func(c *kafka.Config) { c.TopicRegex = "x" },
		"a bad regex":              func(c *kafka.Config) { c.Topics, c.TopicRegex = nil, "(" },
		"an unknown start":         func(c *kafka.Config) { c.StartingOffsets = "yesterday" },
		"an unknown end":           func(c *kafka.Config) { c.EndingOffsets = "earliest" },
		"dead-letter without sink": func(c *kafka.Config) { c.BadRecords = kafka.BadRecordsDeadLetter },
		"an unknown policy":        func(c *kafka.Config) { c.OffsetsGone = "ignore" },
		"a value column named like": func(c *kafka.Config) {
			c.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: "offset", Type: arrow.PrimitiveTypes.Int64}}, nil)
		},
		"an unsupported type": func(c *kafka.Config) {
			c.ValueSchema = arrow.NewSchema([]arrow.Field{{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)
		},
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range bad {
		c := ok
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
