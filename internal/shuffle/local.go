package shuffle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/scheduler"
)

// Budget is the memory the blocks of every run of one process may hold;
// blocks beyond it go to disk.
type Budget struct {
	Limit int64
	used  atomic.Int64
}

// Used is the memory the blocks hold now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Local keeps one run's blocks where its tasks ran: in memory while Budget
// allows (no Budget: always, the in-process executor's shuffle) and the
// others in Arrow IPC files under Dir (a cluster executor's).
type Local struct {
	Node   string
	Dir    string           // created on the first spill
	Budget *Budget          // shared by the runs of a process; nil: no limit
	Mem    memory.Allocator // reads spilled blocks back; default the Go allocator

	mu    sync.Mutex
	mem   map[key][]arrow.Record
	size  map[key]int64
	files map[key]string
}

var _ Store = (*Local)(nil)

type key struct{ stage, mapTask, part int }

// Put implements Store. A block that cannot be written to disk (a full
// disk) is an error naming the file.
func (s *Local) Put(stage, mapTask, part int, recs []arrow.Record) (scheduler.Location, error) {
	loc := scheduler.Location{Node: s.Node, Stage: stage, Map: mapTask, Part: part}
	for _, r := range recs {
		loc.Rows += r.NumRows()
	}
	size := recordsSize(recs)
	loc.Bytes = size
	k := key{stage, mapTask, part}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mem == nil {
		s.mem, s.size, s.files = map[key][]arrow.Record{}, map[key]int64{}, map[key]string{}
	}
	s.drop(k)
	if s.Budget == nil || s.Budget.used.Add(size) <= s.Budget.Limit {
		s.mem[k], s.size[k] = recs, size
		return loc, nil
	}
	s.Budget.used.Add(-size)
	path := filepath.Join(s.Dir, fmt.Sprintf("%d-%d-%d.arrow", stage, mapTask, part))
	err := writeIPC(path, recs, s.Mem)
	release(recs)
	if err != nil {
		os.Remove(path)
		return loc, fmt.Errorf("spill block to %s: %w", path, err)
	}
	s.files[k] = path
	return loc, nil
}

func writeIPC(path string, recs []arrow.Record, mem memory.Allocator) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(recs[0].Schema()), ipc.WithAllocator(mem))
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

func readIPC(path string, mem memory.Allocator) ([]arrow.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(mem))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []arrow.Record
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.RecordAt(i)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			release(out)
			return nil, err
		}
		out = append(out, rec) // RecordAt's record is the caller's
	}
	return out, nil
}

// Fetch implements Store.
func (s *Local) Fetch(_ context.Context, locs []scheduler.Location) ([]arrow.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []arrow.Record
	for _, l := range locs {
		k := key{l.Stage, l.Map, l.Part}
		if recs, ok := s.mem[k]; ok {
			for _, r := range recs {
				r.Retain()
				out = append(out, r)
			}
			continue
		}
		path, ok := s.files[k]
		if !ok {
			release(out)
			return nil, &scheduler.FetchError{Loc: l, Err: ErrNoBlock}
		}
		recs, err := readIPC(path, s.mem0())
		if err != nil {
			release(out)
			return nil, &scheduler.FetchError{Loc: l, Err: fmt.Errorf("read spilled block %s: %w", path, err)}
		}
		out = append(out, recs...)
	}
	return out, nil
}

func (s *Local) mem0() memory.Allocator {
	if s.Mem == nil {
		return memory.DefaultAllocator
	}
	return s.Mem
}

// drop frees block k. Callers hold s.mu.
func (s *Local) drop(k key) {
	if recs, ok := s.mem[k]; ok {
		release(recs)
		if s.Budget != nil {
			s.Budget.used.Add(-s.size[k])
		}
		delete(s.mem, k)
		delete(s.size, k)
	}
	if path, ok := s.files[k]; ok {
		os.Remove(path)
		delete(s.files, k)
	}
}

// Release implements Store.
func (s *Local) Release(stage int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.mem {
		if k.stage == stage {
			s.drop(k)
		}
	}
	for k := range s.files {
		if k.stage == stage {
			s.drop(k)
		}
	}
}

// Close frees every block and removes Dir.
func (s *Local) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.mem {
		s.drop(k)
	}
	for k := range s.files {
		s.drop(k)
	}
	if s.Dir != "" {
		os.RemoveAll(s.Dir)
	}
}

// Spilled counts the blocks on disk.
func (s *Local) Spilled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.files)
}

func release(recs []arrow.Record) {
	for _, r := range recs {
		r.Release()
	}
}

// recordsSize is the bytes of recs' buffers (arrow/util's TotalRecordSize
// would bring in its protobuf dependencies for these few lines).
func recordsSize(recs []arrow.Record) int64 {
	var n int64
	for _, r := range recs {
		for _, c := range r.Columns() {
			n += dataSize(c.Data())
		}
	}
	return n
}

func dataSize(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	if d.DataType().ID() == arrow.DICTIONARY {
		n += dataSize(d.Dictionary())
	}
	return n
}
