package scheduler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"time"
)

// Stage is what the scheduler knows of a stage: its place in the job's
// graph and how many tasks it has. What a task does is the Executor's
// business (it holds the query's compiled spec); the scheduler never sees
// an operator, a file or a topic.
type Stage struct {
	ID    int
	Deps  []int // stages whose map output this stage reads, by stage id
	Tasks int
	// Parts is the partition count of the exchange this stage feeds; 0 for
	// the final stage, whose task results go back to the caller.
	Parts int
	// Sticky: the stage's tasks own key-group ranges of state, so task i
	// runs on the node rendezvous hashing picks for (stage, i) among the
	// live nodes, batch after batch, and its state stays warm there. When
	// nodes join or leave only the tasks whose pick changed move.
	Sticky bool
}

// Location names one map output block: the rows map task Map of stage
// Stage wrote for partition Part, held by executor Node until the stage
// is released.
type Location struct {
	Node  string `json:"node"`
	Stage int    `json:"stage"`
	Map   int    `json:"map"`
	Part  int    `json:"part"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes,omitempty"`
}

// Task is one attempt of one task: task Index of stage Stage, placed on
// Node, with the locations of every map output block it reads, by
// exchange (the id of the stage that feeds it), in map-task order.
type Task struct {
	Stage   int `json:"stage"`
	Index   int `json:"index"`
	Attempt int `json:"attempt,omitempty"` // 0 for the first
	// Node is where the scheduler placed the attempt ("" when the
	// executor runs every task itself: Config.Nodes is nil).
	Node   string             `json:"node,omitempty"`
	Inputs map[int][]Location `json:"inputs,omitempty"`
}

// Result is what a task returns: plain data that crosses a process
// boundary as it is.
type Result struct {
	// Outputs are the task's map output blocks, one per non-empty
	// partition (for the final stage: partition 0).
	Outputs []Location `json:"outputs,omitempty"`
	// Commit are the sink commit messages the task prepared.
	Commit [][]byte `json:"commit,omitempty"`
	// Metrics are the task's metrics, encoded by the executor; the
	// scheduler passes them through.
	Metrics []byte `json:"metrics,omitempty"`
}

// Node is a place tasks run: a live executor and how many tasks it runs
// at once.
type Node struct {
	Name  string
	Slots int
}

// ErrNodeLost marks a task error that says nothing of the task: the node
// running it died, hung past its deadline or could not be reached. The
// task is retried elsewhere and the node's blocks are treated as lost.
// When every retry fails too, it reaches the driver, whose restart
// strategy treats it as transient (its Transient method).
var ErrNodeLost error = transientError("node lost")

// transientError is a sentinel a restart may cure: microbatch.Transient
// finds its Transient method with errors.As.
type transientError string

func (e transientError) Error() string   { return string(e) }
func (e transientError) Transient() bool { return true }

// FetchError is a task's failure to read a map output block: the block's
// node is gone or no longer has it. The scheduler re-runs the map tasks
// whose blocks lived on that node, then the task.
type FetchError struct {
	Loc Location
	Err error
}

func (e *FetchError) Error() string {
	return fmt.Sprintf("fetch block (stage %d, map %d, part %d) from node %s: %v", e.Loc.Stage, e.Loc.Map, e.Loc.Part, e.Loc.Node, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// Executor runs tasks of one job.
//
// Contract:
//  1. RunTask runs one task attempt to the end, on t.Node when set, and
//     returns its result; an error means the attempt's outputs, if any,
//     are discarded. A panic in a task is returned as that task's error.
//     Errors wrapping ErrNodeLost or *FetchError are retried (up to
//     Config.MaxAttempts); any other error fails the job.
//  2. RunTask is called concurrently for tasks of one stage; a stage's
//     tasks run only after every stage it depends on has finished.
//  3. Release(stage) frees every map output block of stage; the scheduler
//     calls it once no stage still reads them (never for the final stage,
//     whose blocks the caller fetches and then releases).
type Executor interface {
	RunTask(ctx context.Context, t Task) (*Result, error)
	Release(stage int)
}

// Config shapes one job run.
type Config struct {
	// Workers is how many tasks run at once when Nodes is nil; default
	// GOMAXPROCS.
	Workers int
	// Nodes lists the live nodes to place tasks on, each running up to
	// its Slots tasks at once. It may wait (bounded by ctx) for a node to
	// come alive. Nil: the executor runs every task itself.
	Nodes func(ctx context.Context) ([]Node, error)
	// MaxAttempts bounds the attempts of a task whose attempts failed
	// with ErrNodeLost or a FetchError on a node lost before (an attempt
	// that finds a node dead for the first time, or that never got a slot
	// because every node of its round died, is retried without counting);
	// default 1 without Nodes, 4 with.
	MaxAttempts int
	// NodeWait is how long a stage waits for a node while every node
	// listed was lost in this job; default 1 min.
	NodeWait time.Duration
	// Logger receives a Warn record per node lost in the job and per task
	// attempt retried (stage, task, attempt, node, error); default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.NodeWait <= 0 {
		c.NodeWait = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 1
		if c.Nodes != nil {
			c.MaxAttempts = 4
		}
	}
	return c
}

// job is one Run: what every stage produced so far.
type job struct {
	ctx    context.Context
	ex     Executor
	cfg    Config
	stages map[int]Stage
	// blocks[stage][task] are the blocks of the task's successful attempt.
	blocks  map[int][][]Location
	results map[int][]*Result
	lost    map[string]bool // nodes whose blocks are gone; no task goes there again
	slots   *slots
}

// Run runs stages (dependencies first, the last one final) on ex and
// returns the final stage's task results in task order, and every task's
// result of the other stages in stage then task order (for their
// metrics): exactly one successful attempt's result per task. The final
// stage's map outputs are the caller's to release.
//
// With Config.Nodes, every stage's blocks stay until the job ends, so a
// map task whose blocks were lost can be re-run from its own inputs.
func Run(ctx context.Context, stages []Stage, ex Executor, cfg Config) (final []*Result, others []*Result, err error) {
	cfg = cfg.withDefaults()
	if len(stages) == 0 {
		return nil, nil, errors.New("scheduler: a job needs at least one stage")
	}
	j := &job{ctx: ctx, ex: ex, cfg: cfg, stages: map[int]Stage{}, blocks: map[int][][]Location{},
		results: map[int][]*Result{}, lost: map[string]bool{}, slots: newSlots()}
	readers := map[int]int{}
	for _, st := range stages {
		j.stages[st.ID] = st
		for _, d := range st.Deps {
			readers[d]++
		}
	}
	live := map[int]bool{} // stages whose blocks are not released yet
	defer func() {
		if err != nil {
			for id := range live {
				ex.Release(id)
			}
		}
	}()
	for i, st := range stages {
		live[st.ID] = true // a failed stage may have blocks of its tasks that succeeded
		if err := j.runStage(st, nil); err != nil {
			return nil, nil, err
		}
		if i == len(stages)-1 {
			for id := range live {
				if id != st.ID {
					ex.Release(id)
				}
			}
			for _, s := range stages[:i] {
				others = append(others, j.results[s.ID]...)
			}
			return j.results[st.ID], others, nil
		}
		for _, task := range j.blocks[st.ID] {
			for _, l := range task {
				if l.Part < 0 || l.Part >= max(st.Parts, 1) {
					return nil, nil, fmt.Errorf("scheduler: stage %d task %d returned a block for partition %d of %d", st.ID, l.Map, l.Part, max(st.Parts, 1))
				}
			}
		}
		if cfg.Nodes != nil {
			continue // kept for re-runs until the job ends
		}
		for _, d := range st.Deps {
			if readers[d]--; readers[d] == 0 {
				ex.Release(d)
				delete(live, d)
			}
		}
	}
	return nil, nil, errors.New("unreachable")
}

// inputs are the blocks st's tasks read: for each stage it reads, by
// partition (= the reading task), in map-task order.
func (j *job) inputs(st Stage) map[int][][]Location {
	if len(st.Deps) == 0 {
		return nil
	}
	in := map[int][][]Location{}
	for _, d := range st.Deps {
		parts := make([][]Location, st.Tasks)
		for _, task := range j.blocks[d] {
			for _, l := range task {
				if l.Part >= 0 && l.Part < len(parts) {
					parts[l.Part] = append(parts[l.Part], l)
				}
			}
		}
		in[d] = parts
	}
	return in
}

// runStage runs tasks (nil: every task) of st until each has a successful
// attempt, retrying attempts that failed with ErrNodeLost or a FetchError
// after re-running the map tasks whose blocks were lost.
func (j *job) runStage(st Stage, tasks []int) error {
	if j.results[st.ID] == nil {
		j.results[st.ID] = make([]*Result, st.Tasks)
		j.blocks[st.ID] = make([][]Location, st.Tasks)
	}
	if tasks == nil {
		tasks = make([]int, st.Tasks)
		for t := range tasks {
			tasks[t] = t
		}
	}
	attempts := map[int]int{}
	tried := map[int][]string{} // nodes each task failed on
	for len(tasks) > 0 {
		errs, nodes, err := j.round(st, tasks, attempts, tried)
		if err != nil {
			return err
		}
		var retry []int
		var first error
		lostBefore := maps.Clone(j.lost)
		for i, t := range tasks {
			err := errs[i]
			if err == nil {
				continue
			}
			var fe *FetchError
			var gone string
			switch {
			case j.cfg.Nodes != nil && nodes[i] == "" && errors.Is(err, ErrNodeLost):
				// It never ran: every node of the round was lost before it
				// got a slot. Those nodes are out of the job now, which
				// bounds these retries as it does the ones below.
				retry = append(retry, t)
				j.retried(st.ID, t, attempts[t], "", "every node of its round was lost before it ran (not counted)", err)
				continue
			case errors.As(err, &fe):
				gone = fe.Loc.Node
			case errors.Is(err, ErrNodeLost):
				gone = nodes[i]
			default:
				if first == nil || errors.Is(first, context.Canceled) {
					first = fmt.Errorf("stage %d task %d: %w", st.ID, t, err)
				}
				continue
			}
			if gone != "" && !j.lost[gone] {
				j.cfg.Logger.LogAttrs(j.ctx, slog.LevelWarn, "executor lost", slog.String("node", gone),
					slog.Int("stage", st.ID), slog.Int("task", t), slog.Any("error", err))
			}
			j.lose(gone)
			// An attempt that failed because a node died this round is
			// no fault of the task (Spark does not count executor loss
			// either): it is retried without counting. Each such retry
			// takes a node out of the job, which bounds them.
			if gone != "" && !lostBefore[gone] {
				tried[t] = append(tried[t], nodes[i])
				retry = append(retry, t)
				j.retried(st.ID, t, attempts[t], nodes[i], "its node was lost (not counted)", err)
				continue
			}
			attempts[t]++
			tried[t] = append(tried[t], nodes[i])
			if attempts[t] >= j.cfg.MaxAttempts {
				if first == nil || errors.Is(first, context.Canceled) {
					first = fmt.Errorf("stage %d task %d: %d attempts failed, the last: %w", st.ID, t, attempts[t], err)
				}
				continue
			}
			retry = append(retry, t)
			j.retried(st.ID, t, attempts[t], nodes[i], "failed again on a lost node (counted)", err)
		}
		if first == nil {
			first = j.ctx.Err()
		}
		if first != nil {
			return first
		}
		// The tasks of this stage that succeeded on a node lost since
		// lost their blocks too.
		for t, blocks := range j.blocks[st.ID] {
			if j.results[st.ID][t] != nil && j.onLost(blocks) && !contains(retry, t) {
				j.results[st.ID][t] = nil
				retry = append(retry, t)
			}
		}
		if len(retry) > 0 {
			for _, d := range st.Deps {
				if err := j.recover(d); err != nil {
					return err
				}
			}
		}
		sort.Ints(retry)
		tasks = retry
	}
	return nil
}

// recover re-runs the tasks of stage id whose blocks were on a lost node
// (after recovering the stages they read).
func (j *job) recover(id int) error {
	var redo []int
	for t, blocks := range j.blocks[id] {
		if j.onLost(blocks) {
			redo = append(redo, t)
		}
	}
	if len(redo) == 0 {
		return nil
	}
	j.cfg.Logger.LogAttrs(j.ctx, slog.LevelWarn, "re-running tasks whose output was lost", slog.Int("stage", id), slog.Any("tasks", redo))
	st := j.stages[id]
	for _, d := range st.Deps {
		if err := j.recover(d); err != nil {
			return err
		}
	}
	return j.runStage(st, redo)
}

// retried logs a task attempt that failed and runs again.
func (j *job) retried(stage, task, attempts int, node, why string, err error) {
	j.cfg.Logger.LogAttrs(j.ctx, slog.LevelWarn, "task retried", slog.Int("stage", stage), slog.Int("task", task),
		slog.Int("failures_counted", attempts), slog.String("node", node), slog.String("reason", why), slog.Any("error", err))
}

func (j *job) onLost(blocks []Location) bool {
	for _, l := range blocks {
		if j.lost[l.Node] {
			return true
		}
	}
	return false
}

func (j *job) lose(node string) {
	if node != "" {
		j.lost[node] = true
	}
}

// round runs one attempt of each of tasks concurrently and returns, per
// task, its error and the node it ran on. A failure that is not retried
// cancels the round. The error is for the round itself (no node alive
// within the context's time).
func (j *job) round(st Stage, tasks []int, attempts map[int]int, tried map[int][]string) ([]error, []string, error) {
	ctx, cancel := context.WithCancel(j.ctx)
	defer cancel()
	var nodes []Node
	if j.cfg.Nodes != nil {
		var err error
		if nodes, err = j.liveNodes(ctx); err != nil {
			return nil, nil, fmt.Errorf("stage %d: %w", st.ID, err)
		}
	} else {
		nodes = []Node{{Slots: j.cfg.Workers}}
	}
	j.slots.set(nodes)
	errs := make([]error, len(tasks))
	placed := make([]string, len(tasks))
	inputs := j.inputs(st)
	var wg sync.WaitGroup
	for i, t := range tasks {
		task := Task{Stage: st.ID, Index: t, Attempt: attempts[t]}
		if inputs != nil {
			task.Inputs = map[int][]Location{}
			for d, parts := range inputs {
				task.Inputs[d] = parts[t]
			}
		}
		var want []string // nodes in order of preference; nil: any
		if st.Sticky && j.cfg.Nodes != nil {
			want = rendezvous(fmt.Sprintf("%d/%d", st.ID, t), nodes, tried[t])
		} else if j.cfg.Nodes != nil {
			want = avoid(nodes, tried[t])
		}
		// A task of a sticky stage waits for a slot of its node in its own
		// goroutine, holding up no other; any other takes the next free
		// slot in task order.
		node := ""
		if !st.Sticky {
			var err error
			if node, err = j.slots.acquire(ctx, want, false); err != nil {
				for k := i; k < len(tasks); k++ {
					errs[k] = err
				}
				break
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st.Sticky {
				var err error
				if node, err = j.slots.acquire(ctx, want, true); err != nil {
					errs[i] = err
					return
				}
			}
			defer j.slots.release(node)
			task.Node, placed[i] = node, node
			res, err := j.run(ctx, task)
			if err == nil {
				j.results[st.ID][t] = res
				j.blocks[st.ID][t] = res.Outputs
				return
			}
			errs[i] = err
			var fe *FetchError
			switch {
			case errors.Is(err, ErrNodeLost):
				j.slots.drop(node) // no more of this round's tasks go there
			case errors.As(err, &fe):
				j.slots.drop(fe.Loc.Node)
			default:
				cancel()
			}
		}()
	}
	wg.Wait()
	return errs, placed, nil
}

// liveNodes asks Config.Nodes for the live nodes, less the lost ones.
// It waits (polling, up to Config.NodeWait) while every node listed is
// lost: gossip takes a while to drop the dead and to bring replacements.
func (j *job) liveNodes(ctx context.Context) ([]Node, error) {
	deadline := time.Now().Add(j.cfg.NodeWait)
	for {
		all, err := j.cfg.Nodes(ctx)
		if err != nil {
			return nil, err
		}
		var nodes []Node
		for _, n := range all {
			if !j.lost[n.Name] && n.Slots > 0 {
				nodes = append(nodes, n)
			}
		}
		if len(nodes) > 0 {
			return nodes, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no live node to run tasks on after waiting %v (%d listed, lost this job: %v)", j.cfg.NodeWait, len(all), keys(j.lost))
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (j *job) run(ctx context.Context, t Task) (r *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return j.ex.RunTask(ctx, t)
}

// rendezvous orders nodes by their highest-random-weight score for key,
// those in avoid last: the first is the key's owner while it lives.
func rendezvous(key string, nodes []Node, avoidNodes []string) []string {
	type scored struct {
		name  string
		score uint64
		avoid bool
	}
	s := make([]scored, len(nodes))
	for i, n := range nodes {
		h := fnv.New64a()
		h.Write([]byte(n.Name))
		h.Write([]byte{0})
		h.Write([]byte(key))
		s[i] = scored{n.Name, mix(h.Sum64()), contains(avoidNodes, n.Name)}
	}
	sort.Slice(s, func(a, b int) bool {
		if s[a].avoid != s[b].avoid {
			return !s[a].avoid
		}
		return s[a].score > s[b].score
	})
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i].name
	}
	return out
}

// mix is a 64-bit finalizer (splitmix64's), so node names differing in
// their last byte still score independently.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// Owner is the node rendezvous hashing gives task of a sticky stage among
// nodes (for tests and status pages).
func Owner(stage, task int, nodes []Node) string {
	if len(nodes) == 0 {
		return ""
	}
	return rendezvous(fmt.Sprintf("%d/%d", stage, task), nodes, nil)[0]
}

// avoid lists nodes, the ones in bad last.
func avoid(nodes []Node, bad []string) []string {
	var good, rest []string
	for _, n := range nodes {
		if contains(bad, n.Name) {
			rest = append(rest, n.Name)
		} else {
			good = append(good, n.Name)
		}
	}
	return append(good, rest...)
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// slots counts the free task slots of each node.
type slots struct {
	mu   sync.Mutex
	free map[string]int
	cap  map[string]int
	wake chan struct{} // closed on every release
}

func newSlots() *slots {
	return &slots{free: map[string]int{}, cap: map[string]int{}, wake: make(chan struct{})}
}

// set makes nodes the ones tasks are placed on, keeping the slots in use
// of nodes that stay.
func (s *slots) set(nodes []Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cap := map[string]int{}
	free := map[string]int{}
	for _, n := range nodes {
		cap[n.Name] = n.Slots
		used := s.cap[n.Name] - s.free[n.Name]
		free[n.Name] = n.Slots - used
	}
	s.cap, s.free = cap, free
}

// acquire takes a slot: on want[0] when strict (waiting for it), else on
// the first node of want (or any node, want nil) with a free slot, the
// one with most free slots among equals.
func (s *slots) acquire(ctx context.Context, want []string, strict bool) (string, error) {
	for {
		s.mu.Lock()
		if len(s.cap) == 0 {
			s.mu.Unlock()
			return "", fmt.Errorf("every node of this round was lost: %w", ErrNodeLost)
		}
		node, ok := s.pick(want, strict)
		if ok {
			s.free[node]--
			s.mu.Unlock()
			return node, nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (s *slots) pick(want []string, strict bool) (string, bool) {
	if strict && len(want) > 0 {
		for _, n := range want { // the first that was not dropped
			if _, ok := s.cap[n]; ok {
				return n, s.free[n] > 0
			}
		}
		return "", false
	}
	if want == nil {
		for n := range s.free {
			want = append(want, n)
		}
		sort.Strings(want)
	}
	best, most := "", 0
	for _, n := range want { // in order: an earlier node wins a tie
		if f := s.free[n]; f > most {
			best, most = n, f
		}
	}
	return best, most > 0
}

// drop takes node out of placement until the next set.
func (s *slots) drop(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cap, node)
	delete(s.free, node)
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *slots) release(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.cap[node]; ok {
		s.free[node]++
	}
	close(s.wake)
	s.wake = make(chan struct{})
}
