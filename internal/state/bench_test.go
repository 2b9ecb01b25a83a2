package state

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/vfs"
)

// windowCount is the target state: (string key ~10 bytes, window
// end) -> (count, sum).
var (
	wcKeys = arrow.NewSchema([]arrow.Field{
		{Name: "user", Type: arrow.BinaryTypes.String},
		{Name: "wend", Type: &arrow.TimestampType{Unit: arrow.Millisecond}},
	}, nil)
	wcVals = arrow.NewSchema([]arrow.Field{
		{Name: "count", Type: arrow.PrimitiveTypes.Int64},
		{Name: "sum", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
)

func wcBatch(mem memory.Allocator, from, n int) (arrow.Record, arrow.Record) {
	kb := array.NewRecordBuilder(mem, wcKeys)
	vb := array.NewRecordBuilder(mem, wcVals)
	defer kb.Release()
	defer vb.Release()
	for i := from; i < from+n; i++ {
		kb.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("user%06d", i/4))
		kb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(i % 4 * 60000))
		vb.Field(0).(*array.Int64Builder).Append(1)
		vb.Field(1).(*array.Int64Builder).Append(int64(i))
	}
	return kb.NewRecord(), vb.NewRecord()
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMillionKeys loads 1 M keys of the window-count state and reports
// memory per key (SizeBytes and the Go heap delta), then commits version 10
// (delta + snapshot of all keys) and reloads it.
func BenchmarkMillionKeys(b *testing.B) { millionKeys(b, "", nil) }

// BenchmarkMillionKeysTimeIndex is BenchmarkMillionKeys with the window
// end as TimeColumn: what maintaining the index costs per key.
func BenchmarkMillionKeysTimeIndex(b *testing.B) { millionKeys(b, "wend", nil) }

// BenchmarkMillionKeysPartIndex is BenchmarkMillionKeys with the user as
// PartKey (256 K users of 4 windows each): what maintaining that index
// costs per key.
func BenchmarkMillionKeysPartIndex(b *testing.B) { millionKeys(b, "", []string{"user"}) }

func millionKeys(b *testing.B, timeColumn string, partKey []string) {
	const keys, batch = 1 << 20, 64 << 10
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		before := heapInUse()
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		fs := vfs.NewMem()
		cfg := Config{FS: fs, Dir: "/st", StoreSpec: StoreSpec{Operator: "agg", KeyGroups: 128, Lo: 0, Hi: 128,
			KeySchema: wcKeys, ValueSchema: wcVals, SnapshotEvery: 1, TimeColumn: timeColumn, PartKey: partKey, Allocator: mem}}
		var recs [][2]arrow.Record
		for from := 0; from < keys; from += batch {
			k, v := wcBatch(mem, from, batch)
			recs = append(recs, [2]arrow.Record{k, v})
		}
		s, err := Open(cfg, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		for _, r := range recs {
			if err := s.Put(r[0], r[1], nil); err != nil {
				b.Fatal(err)
			}
		}
		put := time.Since(start)
		b.StopTimer()
		// Commit bookkeeping (dirty list) is part of the store until
		// Commit; measure after it, as the steady state.
		start = time.Now()
		if err := s.Commit(1); err != nil {
			b.Fatal(err)
		}
		commit := time.Since(start)
		start = time.Now()
		r, err := Open(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		load := time.Since(start)
		r.Close()
		b.ReportMetric(float64(put.Nanoseconds())/keys, "put-ns/key")
		b.ReportMetric(float64(commit.Milliseconds()), "commit-delta+snapshot-ms")
		b.ReportMetric(float64(load.Milliseconds()), "load-ms")
		for _, r := range recs {
			r[0].Release()
			r[1].Release()
		}
		recs = nil
		files := fs.Files()
		snap, _ := fs.ReadFile(files[len(files)-1])
		for _, p := range files {
			fs.Remove(p)
		}
		after := heapInUse()
		b.ReportMetric(float64(s.SizeBytes())/keys, "sizebytes/key")
		b.ReportMetric(float64(int64(after)-int64(before))/keys, "heap/key")
		b.ReportMetric(float64(len(snap))/keys, "snapshotfile/key")
		if s.Len() != keys {
			b.Fatalf("Len %d", s.Len())
		}
		runtime.KeepAlive(s)
		s.Close()
		if mem.CurrentAlloc() != 0 {
			b.Fatalf("leak: %d bytes", mem.CurrentAlloc())
		}
	}
}

// BenchmarkLookupUpdate is the aggregation's per-batch read-modify-write:
// Lookup + Values + Update of 64 K existing keys in a 1 M-key store.
func BenchmarkLookupUpdate(b *testing.B) { lookupUpdate(b, "") }

// BenchmarkLookupUpdateTimeIndex indexes the window end (a key column: an
// Update does not touch the index).
func BenchmarkLookupUpdateTimeIndex(b *testing.B) { lookupUpdate(b, "wend") }

// BenchmarkLookupUpdateValueTimeIndex indexes "sum", a value column every
// Update changes: the worst case, a push per row (a timer rewritten on
// every event).
func BenchmarkLookupUpdateValueTimeIndex(b *testing.B) { lookupUpdate(b, "sum") }

func lookupUpdate(b *testing.B, timeColumn string) {
	const keys, batch = 1 << 20, 64 << 10
	mem := memory.NewGoAllocator()
	cfg := Config{FS: vfs.NewMem(), Dir: "/st", StoreSpec: StoreSpec{Operator: "agg", KeyGroups: 128, Lo: 0, Hi: 128,
		KeySchema: wcKeys, ValueSchema: wcVals, TimeColumn: timeColumn, Allocator: mem}}
	s, err := Open(cfg, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for from := 0; from < keys; from += batch {
		k, v := wcBatch(mem, from, batch)
		if err := s.Put(k, v, nil); err != nil {
			b.Fatal(err)
		}
		k.Release()
		v.Release()
	}
	k, v := wcBatch(mem, keys/2, batch)
	defer k.Release()
	defer v.Release()
	// Another sum for every row, so that alternating v and v2 writes a
	// new time into every row of every iteration when "sum" is indexed.
	k2, v2 := wcBatch(mem, keys/2+batch, batch)
	defer k2.Release()
	defer v2.Release()
	vs := []arrow.Record{v, v2}
	slots := make([]int32, batch)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Lookup(k, slots); err != nil {
			b.Fatal(err)
		}
		v := vs[i%2]
		cur, err := s.Values(slots)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Update(slots, v); err != nil {
			b.Fatal(err)
		}
		cur.Release()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds()/1e6, "Mrows/s")
}

// BenchmarkCloseFewWindows is a windowed aggregation's end of batch on a
// 1 M-key state where 1/1024 of the keys close per batch: ScanWhere the
// closed ones, EvictWhere them, then Put as many keys of a later window
// (the state stays at 1 M keys). Without TimeColumn both calls visit every
// key; with it they pop the 1 K due entries.
func BenchmarkCloseFewWindows(b *testing.B) {
	for _, tc := range []string{"", "wend"} {
		b.Run("TimeColumn="+tc, func(b *testing.B) {
			const keys, per = 1 << 20, 1 << 10
			mem := memory.NewGoAllocator()
			cfg := Config{FS: vfs.NewMem(), Dir: "/st", StoreSpec: StoreSpec{Operator: "agg", KeyGroups: 128, Lo: 0, Hi: 128,
				KeySchema: wcKeys, ValueSchema: wcVals, TimeColumn: tc, Allocator: mem}}
			s, err := Open(cfg, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			// Key i has window end i / per: per keys close per step.
			batchOf := func(from, n int) (arrow.Record, arrow.Record) {
				kb := array.NewRecordBuilder(mem, wcKeys)
				vb := array.NewRecordBuilder(mem, wcVals)
				defer kb.Release()
				defer vb.Release()
				for i := from; i < from+n; i++ {
					kb.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("user%07d", i))
					kb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(i / per))
					vb.Field(0).(*array.Int64Builder).Append(1)
					vb.Field(1).(*array.Int64Builder).Append(int64(i))
				}
				return kb.NewRecord(), vb.NewRecord()
			}
			for from := 0; from < keys; from += 64 << 10 {
				k, v := batchOf(from, 64<<10)
				if err := s.Put(k, v, nil); err != nil {
					b.Fatal(err)
				}
				k.Release()
				v.Release()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				wm := int64(i + 1)
				n := 0
				err := s.ScanWhere(1, wm, func(k, v arrow.Record) error { n += int(k.NumRows()); return nil })
				if err != nil {
					b.Fatal(err)
				}
				got, err := s.EvictWhere(1, wm)
				if err != nil || got != per || n != per {
					b.Fatalf("step %d: scanned %d, evicted %d (%v), want %d", i, n, got, err, per)
				}
				k, v := batchOf(keys+i*per, per)
				err = s.Put(k, v, nil)
				k.Release()
				v.Release()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
