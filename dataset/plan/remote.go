package plan

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicedata/sluice/internal/shuffle"
	"github.com/sluicedata/sluice/internal/state"
	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/scheduler"
	"github.com/sluicedata/sluice/sinks"
)

// Dispatcher carries a run's tasks to a cluster's executors and their
// blocks back: package cluster's Driver implements it. Only bytes, blocks
// and names cross it.
type Dispatcher interface {
	// Nodes lists the live executors and their task slots, waiting
	// (bounded by ctx) while there is none.
	Nodes(ctx context.Context) ([]scheduler.Node, error)
	// RunTask runs an encoded task of run on node and returns the encoded
	// result. An error saying the node is gone, unreachable or past its
	// deadline wraps scheduler.ErrNodeLost; the task's own error does not.
	RunTask(ctx context.Context, node, run string, task []byte) ([]byte, error)
	// Fetch returns the records of blocks of run, wherever they live; the
	// caller owns them. A block that cannot be read is a
	// *scheduler.FetchError.
	Fetch(ctx context.Context, run string, locs []scheduler.Location) ([]arrow.Record, error)
	// Release frees the blocks of stage of run on every executor
	// (AllStages: every block of the run).
	Release(run string, stage int)
	// Serve makes this driver serve fn's records under name to executors
	// (shuffle.Env.Broadcast) until stop is called.
	Serve(name string, fn func(key string) ([]arrow.Record, bool)) (stop func())
}

// AllStages names every stage of a run in Dispatcher.Release.
const AllStages = -1 << 30

// TaskRequest is what an executor's TaskServer gets for one task.
type TaskRequest struct {
	// SpecID is the hash of the encoded spec; Spec is the spec, sent only
	// the first time a node gets a task of it.
	SpecID string          `json:"spec_id"`
	Spec   []byte          `json:"spec,omitempty"`
	Task   json.RawMessage `json:"task"`
	// State is the directory of the query's state (shared by every
	// process), "" when the query keeps none.
	State string `json:"state,omitempty"`
	// StateBackend is the state backend the driver's provider uses
	// (state.NewProvider); "" = memory.
	StateBackend string `json:"state_backend,omitempty"`
	// Broadcast names what the driver serves this query's broadcast keys
	// under, with each key's generation (StaticCache.Gen).
	Broadcast string           `json:"broadcast,omitempty"`
	Gens      map[string]int64 `json:"gens,omitempty"`
	// Params are the job's parameters: the executor rebuilds the job's
	// code with them (TaskServer.Jobs).
	Params map[string]string `json:"params,omitempty"`
	// Query and Epoch fence drivers: an executor refuses a task of Query
	// with an epoch lower than one it served (ErrFenced).
	Query string `json:"query,omitempty"`
	Epoch int64  `json:"epoch,omitempty"`
}

// ErrFenced is an executor's answer to a driver a newer one replaced.
var ErrFenced = errors.New("fenced: a newer driver runs this query")

// ErrUnknownSpec is an executor's answer to a task whose spec it does not
// hold (it restarted, or dropped it); the driver sends it again.
var ErrUnknownSpec = errors.New("spec unknown to this executor")

// RemoteExecutor runs a spec's tasks on a cluster's executors through a
// Dispatcher: tasks and results cross as bytes, blocks stay on the
// executors that wrote them, the scheduler places tasks (stateful ones
// sticky) and retries the attempts whose node was lost.
type RemoteExecutor struct {
	D Dispatcher
	// Broadcast is what executors fetch from this driver (in-memory scans,
	// stream-static joins' bounded sides).
	Broadcast *StaticCache
	// StateDir is the query's state directory, which every executor opens.
	StateDir string
	// StateBackend is the backend executors open StateDir with ("" =
	// memory): each executor keeps its disk databases locally.
	StateBackend string
	MaxAttempts  int
	// Params are the job's parameters, sent with every task.
	Params map[string]string
	// Query and Epoch name the streaming query and this driver's epoch
	// (see TaskRequest).
	Query string
	Epoch int64
	// Logger receives the scheduler's records: retries and lost executors
	// (scheduler.Config.Logger).
	Logger *slog.Logger

	once  sync.Once
	id    string
	stop  func()
	mu    sync.Mutex
	seq   int
	specs map[*Spec]encodedSpec
	sent  map[string]bool // node + " " + spec id
}

type encodedSpec struct {
	id string
	b  []byte
}

var _ Executor = (*RemoteExecutor)(nil)

// Execute implements Executor.
func (e *RemoteExecutor) Execute(ctx context.Context, spec *Spec, run *Run) (*Outcome, error) {
	e.once.Do(func() {
		var b [8]byte
		rand.Read(b[:])
		e.id = hex.EncodeToString(b[:])
		if e.Broadcast != nil {
			e.stop = e.D.Serve(e.id, e.Broadcast.Records)
		}
	})
	enc, err := e.encoded(spec)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.seq++
	runID := fmt.Sprintf("%s-%d", e.id, e.seq)
	e.mu.Unlock()
	gens := map[string]int64{}
	if e.Broadcast != nil {
		for _, k := range spec.Memory {
			gens[k] = e.Broadcast.Gen(k)
		}
		for _, side := range spec.Statics {
			gens[side.Key] = e.Broadcast.Gen(side.Key)
		}
	}
	do := func(ctx context.Context, ts TaskSpec) (*scheduler.Result, error) {
		task, err := encodeTask(&ts)
		if err != nil {
			return nil, err
		}
		req := TaskRequest{SpecID: enc.id, Task: task, State: e.StateDir, StateBackend: e.StateBackend, Gens: gens, Params: e.Params, Query: e.Query, Epoch: e.Epoch}
		if len(gens) > 0 {
			req.Broadcast = e.id
		}
		return e.send(ctx, ts.Task.Node, runID, &req, enc)
	}
	blocks := &remoteBlocks{d: e.D, run: runID}
	out, err := execute(ctx, spec, run, scheduler.Config{Nodes: e.D.Nodes, MaxAttempts: e.MaxAttempts, Logger: e.Logger}, do, blocks)
	if err != nil {
		e.D.Release(runID, AllStages)
		return nil, err
	}
	out.releaseAll = func() { e.D.Release(runID, AllStages) }
	return out, nil
}

// send runs req on node, with the spec when the node may not hold it.
func (e *RemoteExecutor) send(ctx context.Context, node, run string, req *TaskRequest, enc encodedSpec) (*scheduler.Result, error) {
	for try := 0; ; try++ {
		sentKey := node + " " + enc.id
		e.mu.Lock()
		req.Spec = nil
		if !e.sent[sentKey] {
			req.Spec = enc.b
		}
		e.mu.Unlock()
		body, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode task request: %w", err)
		}
		resp, err := e.D.RunTask(ctx, node, run, body)
		err = withSentinels(err)
		if try == 0 && errors.Is(err, ErrUnknownSpec) {
			e.mu.Lock()
			delete(e.sent, sentKey)
			e.mu.Unlock()
			continue
		}
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		e.sent[sentKey] = true
		e.mu.Unlock()
		res := &scheduler.Result{}
		if err := json.Unmarshal(resp, res); err != nil {
			return nil, fmt.Errorf("decode the result of node %s: %w", node, err)
		}
		return res, nil
	}
}

// sentinelError is an executor's error as it crossed the wire (as text),
// also matching the plan sentinels its text names.
type sentinelError struct {
	error
	sentinels []error
}

func (w *sentinelError) Unwrap() []error { return append([]error{w.error}, w.sentinels...) }

// withSentinels makes a task error from an executor match, with
// errors.Is, the sentinels of this package it carried as text.
func withSentinels(err error) error {
	if err == nil {
		return nil
	}
	w := &sentinelError{error: err}
	for _, s := range []error{ErrFenced, ErrUnknownSpec} {
		if !errors.Is(err, s) && strings.Contains(err.Error(), s.Error()) {
			w.sentinels = append(w.sentinels, s)
		}
	}
	if len(w.sentinels) == 0 {
		return err
	}
	return w
}

func (e *RemoteExecutor) encoded(spec *Spec) (encodedSpec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if enc, ok := e.specs[spec]; ok {
		return enc, nil
	}
	b, err := spec.Encode()
	if err != nil {
		return encodedSpec{}, err
	}
	enc := encodedSpec{id: specID(b), b: b}
	if e.specs == nil {
		e.specs, e.sent = map[*Spec]encodedSpec{}, map[string]bool{}
	}
	e.specs[spec] = enc
	return enc, nil
}

// specID names an encoded spec: the driver sends it with every task, the
// executor checks a spec it gets against it.
func specID(encoded []byte) string {
	sum := sha256.Sum256(encoded)
	return hex.EncodeToString(sum[:16])
}

// Waiting is the dispatcher's account of what a run waits for ("" when
// nothing, or when the dispatcher does not say).
func (e *RemoteExecutor) Waiting() string {
	if w, ok := e.D.(interface{ Waiting() string }); ok {
		return w.Waiting()
	}
	return ""
}

// Close stops serving broadcast keys.
func (e *RemoteExecutor) Close() {
	if e.stop != nil {
		e.stop()
	}
}

// remoteBlocks are one run's blocks on the cluster.
type remoteBlocks struct {
	d   Dispatcher
	run string
}

func (b *remoteBlocks) Fetch(ctx context.Context, locs []scheduler.Location) ([]arrow.Record, error) {
	return b.d.Fetch(ctx, b.run, locs)
}

func (b *remoteBlocks) Release(stage int) { b.d.Release(b.run, stage) }

// TaskServer runs the tasks a driver sends to this process: it decodes
// the request (keeping each spec it got, by id), resolves names against
// the job's code (Jobs, built once per set of parameters), opens the query's state directory with a provider
// that keeps stores warm between the batches this process runs, and
// caches the driver's broadcast keys by generation. It implements
// shuffle.Runner for package cluster.
type TaskServer struct {
	// Jobs builds the job's code for the driver's parameters.
	Jobs      func(params map[string]string) (*Job, error)
	Mem       memory.Allocator
	BatchRows int

	mu     sync.Mutex
	jobs   map[string]*Job  // by canonical parameters
	epochs map[string]int64 // the highest driver epoch served, by query
	specs  map[string]*Spec
	order  []string // spec ids, oldest first (a bounded cache)
	// StateLocalDir roots the disk backend's local databases ("" =
	// state.DefaultLocalDir of each state directory).
	StateLocalDir string
	states        map[string]state.Provider // by backend and directory
	stateFS       []vfs.FS                  // the buckets states opened, closed with them
	bcast         map[string]*bcEntry       // by broadcast name
	ticks         int64
}

// maxSpecs bounds the specs a TaskServer keeps: a driver sends a dropped
// one again (ErrUnknownSpec).
const maxSpecs = 64

var _ shuffle.Runner = (*TaskServer)(nil)

// RunTask implements shuffle.Runner.
func (s *TaskServer) RunTask(ctx context.Context, body []byte, env shuffle.Env) ([]byte, error) {
	var req TaskRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("%w: decode task request: %v", ErrPlan, err)
	}
	if err := s.fence(&req); err != nil {
		return nil, err
	}
	spec, err := s.spec(&req)
	if err != nil {
		return nil, err
	}
	var ts TaskSpec
	if err := json.Unmarshal(req.Task, &ts); err != nil {
		return nil, fmt.Errorf("%w: decode task: %v", ErrPlan, err)
	}
	job, err := s.job(req.Params)
	if err != nil {
		return nil, err
	}
	xenv := ExecEnv{Node: env.Node, Mem: s.Mem, BatchRows: s.BatchRows, Job: job, Blocks: env.Blocks}
	if xenv.Mem == nil {
		xenv.Mem = memory.DefaultAllocator
	}
	if xenv.BatchRows <= 0 {
		xenv.BatchRows = 1 << 16
	}
	if req.State != "" {
		p, err := s.state(req.State, req.StateBackend)
		if err != nil {
			return nil, err
		}
		xenv.State = p
	}
	if req.Broadcast != "" {
		bc, done, err := s.broadcast(ctx, &req, env)
		defer done()
		if err != nil {
			return nil, err
		}
		xenv.Broadcast = bc
	}
	// Sinks' writers put their rows in the commit message: the driver's
	// own sink instance commits them.
	res, err := RunTask(sinks.WithRemote(ctx), spec, &ts, &xenv)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// fence refuses a task of a driver epoch lower than the query's highest.
func (s *TaskServer) fence(req *TaskRequest) error {
	if req.Query == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if hi := s.epochs[req.Query]; req.Epoch < hi {
		return fmt.Errorf("query %s: this driver's epoch is %d, a driver of epoch %d took over: %w", req.Query, req.Epoch, hi, ErrFenced)
	}
	if s.epochs == nil {
		s.epochs = map[string]int64{}
	}
	s.epochs[req.Query] = req.Epoch
	return nil
}

func (s *TaskServer) job(params map[string]string) (*Job, error) {
	b, _ := json.Marshal(params) // map keys are sorted: one key per set
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[string(b)]; ok {
		return j, nil
	}
	j, err := s.Jobs(params)
	if err != nil {
		return nil, fmt.Errorf("build the job with parameters %s: %w", b, err)
	}
	if s.jobs == nil {
		s.jobs = map[string]*Job{}
	}
	s.jobs[string(b)] = j
	return j, nil
}

func (s *TaskServer) spec(req *TaskRequest) (*Spec, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp, ok := s.specs[req.SpecID]; ok {
		return sp, nil
	}
	if req.Spec == nil {
		return nil, fmt.Errorf("spec %s: %w", req.SpecID, ErrUnknownSpec)
	}
	if id := specID(req.Spec); id != req.SpecID {
		return nil, fmt.Errorf("%w: spec %s arrived with hash %s", ErrPlan, req.SpecID, id)
	}
	sp, err := DecodeSpec(req.Spec)
	if err != nil {
		return nil, err
	}
	if s.specs == nil {
		s.specs = map[string]*Spec{}
	}
	s.specs[req.SpecID] = sp
	s.order = append(s.order, req.SpecID)
	if len(s.order) > maxSpecs {
		delete(s.specs, s.order[0])
		s.order = s.order[1:]
	}
	return sp, nil
}

func (s *TaskServer) state(dir, backend string) (state.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := backend + "\x00" + dir
	if p, ok := s.states[k]; ok {
		return p, nil
	}
	if s.states == nil {
		s.states = map[string]state.Provider{}
	}
	local := ""
	if s.StateLocalDir != "" {
		local = state.DefaultLocalDir(dir)
		local = filepath.Join(s.StateLocalDir, filepath.Base(local))
	}
	// A checkpoint on object storage comes as its URL: the executor opens
	// the bucket itself (its own credentials), once per location, through
	// the filesystems its program linked (vfs.Open: blobfs registers the
	// cloud schemes; this package links no cloud SDK).
	fsys, at, err := vfs.Open(context.Background(), dir)
	if err != nil {
		return nil, fmt.Errorf("state of the query's checkpoint: %w", err)
	}
	p, err := state.NewProvider(backend, fsys, at, local)
	if err != nil {
		vfs.CloseFS(fsys)
		return nil, fmt.Errorf("%w: %v", ErrPlan, err)
	}
	s.states[k] = p
	if fsys != (vfs.OS{}) {
		s.stateFS = append(s.stateFS, fsys)
	}
	return p, nil
}

// maxBroadcasts bounds the broadcast caches an executor keeps: each batch
// job and each start of a streaming query has its own, and a driver that
// is gone never says so.
const maxBroadcasts = 16

// bcEntry is one driver query's broadcast cache and the tasks using it.
type bcEntry struct {
	cache *StaticCache
	refs  int
	used  int64 // a tick of s.ticks at the last use
}

// broadcast returns the cache of req's broadcast name with every key at
// the request's generation, fetching the keys that changed; done says the
// task no longer uses it. Caches beyond maxBroadcasts that no task uses
// are freed, least recently used first.
func (s *TaskServer) broadcast(ctx context.Context, req *TaskRequest, env shuffle.Env) (*StaticCache, func(), error) {
	s.mu.Lock()
	s.ticks++
	e, ok := s.bcast[req.Broadcast]
	if !ok {
		if s.bcast == nil {
			s.bcast = map[string]*bcEntry{}
		}
		e = &bcEntry{cache: &StaticCache{}}
		s.bcast[req.Broadcast] = e
	}
	e.refs++
	e.used = s.ticks
	s.evictBroadcasts()
	s.mu.Unlock()
	done := func() {
		s.mu.Lock()
		e.refs--
		s.evictBroadcasts()
		s.mu.Unlock()
	}
	for key, gen := range req.Gens {
		err := e.cache.Load(key, gen+1, 1, func() ([]arrow.Record, error) {
			if env.Broadcast == nil {
				return nil, fmt.Errorf("broadcast %s: this executor cannot fetch from its driver", key)
			}
			return env.Broadcast(ctx, req.Broadcast, key)
		})
		if err != nil {
			return nil, done, fmt.Errorf("fetch broadcast %q from the driver: %w", key, err)
		}
	}
	return e.cache, done, nil
}

// Broadcasts counts the broadcast caches the server keeps.
func (s *TaskServer) Broadcasts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bcast)
}

// evictBroadcasts frees idle caches beyond maxBroadcasts. Callers hold s.mu.
func (s *TaskServer) evictBroadcasts() {
	for len(s.bcast) > maxBroadcasts {
		oldest := ""
		for name, e := range s.bcast {
			if e.refs == 0 && (oldest == "" || e.used < s.bcast[oldest].used) {
				oldest = name
			}
		}
		if oldest == "" {
			return // every cache is in use
		}
		s.bcast[oldest].cache.Release()
		delete(s.bcast, oldest)
	}
}

// Close frees the cached broadcast data and the warm state stores.
func (s *TaskServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, p := range s.states {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	for _, fsys := range s.stateFS {
		if err := vfs.CloseFS(fsys); err != nil && first == nil {
			first = err
		}
	}
	for _, e := range s.bcast {
		e.cache.Release()
	}
	s.states, s.stateFS, s.bcast = nil, nil, nil
	return first
}
