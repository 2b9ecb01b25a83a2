package jobcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicedata/sluice/internal/vfs"
	"github.com/sluicedata/sluice/internal/vfs/blobfs"
	"github.com/sluicedata/sluice/microbatch"
	"github.com/sluicedata/sluice/microbatch/checkpoint"
)

// roleReplay is the Env.Role of checkpoint replay: the job's Stream code
// runs, its Start calls are recorded, no query starts.
const roleReplay = "replay"

const checkpointSummary = "inspect, verify or replay a query's checkpoint (checkpoint -h)"

// checkpoint runs `checkpoint inspect|verify|replay`.
func (c *cli) checkpoint(ctx context.Context, args []string) error {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		w := c.stdout
		if len(args) == 0 {
			w = c.stderr
		}
		fmt.Fprintf(w, "usage: %s checkpoint <inspect|verify|replay> ...\n\n", c.job.Name)
		fmt.Fprintf(w, "  inspect DIR [--json]   the query id, sources, committed batches, offsets, watermarks and state per operator\n")
		fmt.Fprintf(w, "  verify DIR [--json]    check every file's checksum and the logs' shape; exit 1 naming each problem\n")
		fmt.Fprintf(w, "  replay --batch N [--query NAME] [--json] [flags]\n")
		fmt.Fprintf(w, "                         re-run committed batch N of a query of this job from its checkpoint and prove\n")
		fmt.Fprintf(w, "                         its output equals what the sink committed; exit 1 naming the first difference\n")
		fmt.Fprintf(w, "\nDIR is one query's checkpoint directory (--checkpoint-dir/<query>). '%s checkpoint <subcommand> -h' says more.\n", c.job.Name)
		if len(args) == 0 {
			return usagef("checkpoint: want a subcommand: inspect, verify or replay")
		}
		return nil
	}
	switch args[0] {
	case "inspect", "verify":
		return c.checkpointRead(args[0], args[1:])
	case "replay":
		return c.checkpointReplay(ctx, args[1:])
	}
	return usagef("checkpoint: unknown subcommand %q (want inspect, verify or replay)", args[0])
}

// checkpointRead runs inspect and verify: read-only, no job code.
func (c *cli) checkpointRead(sub string, args []string) error {
	command := "checkpoint " + sub
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	dirs, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		what := "print the query id, format version, pinned config, sources, committed batches, the last batch's\noffsets and watermarks, and per stateful operator its state files, bytes and rows"
		if sub == "verify" {
			what = "check the checkpoint, reading every file and writing none: each log file's checksum and batch,\nthat offsets name the query's sources, the logs' shape, metadata.json and every state file;\nexit 1 when a problem is found, each printed as PATH: PROBLEM"
		}
		fmt.Fprintf(c.stdout, "usage: %s %s DIR [--json]\n\n%s.\nDIR is a path or a URL (s3://bucket/prefix?region=..., gs://, azblob://).\nIt takes no lock: it may run beside the query.\n\nflags:\n  --json  print JSON instead of text\n", c.job.Name, command, what)
		return nil
	}
	if err != nil {
		return usagef("%s: %v (%s %s -h)", command, err, c.job.Name, command)
	}
	if len(dirs) != 1 {
		return usagef("%s: want one checkpoint directory, got %d arguments (%s %s -h)", command, len(dirs), c.job.Name, command)
	}
	// DIR may be a URL (s3://bucket/prefix?region=...): read through the
	// FS it names.
	fsys, dir, err := blobfs.Open(context.Background(), dirs[0])
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	defer vfs.CloseFS(fsys)
	if sub == "inspect" {
		s, err := checkpoint.Inspect(fsys, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", command, err)
		}
		if vfs.IsURL(dirs[0]) {
			s.Dir = dirs[0] // as the user named it: the URL, not the key prefix
		}
		if *asJSON {
			return writeJSON(c.stdout, s)
		}
		return s.WriteText(c.stdout)
	}
	r, err := checkpoint.Verify(fsys, dir)
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if vfs.IsURL(dirs[0]) {
		r.Dir = dirs[0]
	}
	if *asJSON {
		err = writeJSON(c.stdout, r)
	} else {
		err = r.WriteText(c.stdout)
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("%s: %d problems found in %s (first: %s: %s)", command, len(r.Problems), r.Dir, r.Problems[0].Path, r.Problems[0].Problem)
	}
	return nil
}

// parseInterspersed parses fs's flags wherever they are among args (flag
// stops at the first non-flag: `inspect DIR --json` is natural) and
// returns the other arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// replayFlags are checkpoint replay's own flags; the rest of its command
// line is the stream role's settings.
type replayFlags struct {
	batch int64 // -1: not given
	query string
	json  bool
}

// splitReplayFlags takes --batch, --query and --json out of args (with one
// or two dashes, "=value" or the next argument) and returns the others.
func splitReplayFlags(args []string) (replayFlags, []string, error) {
	f := replayFlags{batch: -1}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "batch" && name != "query" && name != "json") {
			rest = append(rest, a)
			continue
		}
		if name == "json" {
			f.json = true
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return f, nil, fmt.Errorf("invalid value %q for flag --json: want true or false", val)
				}
				f.json = b
			}
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return f, nil, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		switch name {
		case "batch":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return f, nil, fmt.Errorf("invalid value %q for flag --batch: want a batch number, 0 or more", val)
			}
			f.batch = n
		case "query":
			f.query = val
		}
	}
	return f, rest, nil
}

// checkpointReplay runs `checkpoint replay`: the job's Stream code in the
// replay role builds its queries, Env.Start records them, and
// microbatch.Replay re-runs the chosen query's batch.
func (c *cli) checkpointReplay(ctx context.Context, args []string) error {
	const command = "checkpoint replay"
	if slices.ContainsFunc(args, isHelp) {
		return c.replayUsage()
	}
	if c.job.Stream == nil {
		return usagef("%s: %s has no streaming queries (Job.Stream) to replay", command, c.job.Name)
	}
	rf, rest, err := splitReplayFlags(args)
	if err != nil {
		return usagef("%s: %v (%s %s -h)", command, err, c.job.Name, command)
	}
	if rf.batch < 0 {
		return usagef("%s: --batch N is required (%s checkpoint inspect DIR lists the committed batches)", command, c.job.Name)
	}
	_, s, err := c.load(roleStream, command, rest)
	if err != nil {
		return err
	}
	// The job's own output goes to stderr: stdout holds only the report.
	log := newLogger(c.stderr, s.LogLevel, s.LogFormat)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	rec := &replayRecorder{}
	env := &Env{Role: roleReplay, Log: log, Stdout: c.stderr, Stderr: c.stderr, Settings: *s, stop: stop, replay: rec}
	err = c.replay(runCtx, env, rf)
	return errors.Join(err, env.finish())
}

func (c *cli) replay(ctx context.Context, env *Env, rf replayFlags) error {
	const command = "checkpoint replay"
	if err := c.job.Stream(ctx, env); err != nil {
		return fmt.Errorf("%s: build the job's queries: %w", command, err)
	}
	q, err := env.replay.pick(rf.query, c.job.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	env.Log.Info("replaying", "query", q.name, "batch", rf.batch, "checkpoint", q.dir)
	r, err := microbatch.Replay(ctx, q.w, rf.batch)
	if r != nil {
		var werr error
		if rf.json {
			werr = writeJSON(c.stdout, r)
		} else {
			werr = r.WriteText(c.stdout)
		}
		if werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: query %s (checkpoint %s): %w", command, q.name, q.dir, err)
	}
	return nil
}

func (c *cli) replayUsage() error {
	w := c.stdout
	fmt.Fprintf(w, "usage: %s checkpoint replay --batch N [--query NAME] [--json] [flags]\n\n", c.job.Name)
	fmt.Fprintf(w, "re-run committed batch N of one of the job's queries from its checkpoint (its recorded offsets,\n"+
		"watermark, batch time and state version), on this process, into a scratch sink, and compare its rows\n"+
		"with what the sink committed for batch N (as multisets) and its state files with the checkpoint's.\n"+
		"Exit 0 when identical; 1 naming the first difference, or why the batch cannot be replayed.\n"+
		"The job's code builds its queries as in the stream role (give the flags and config it ran with:\n"+
		"--checkpoint-dir, the job's settings); nothing is written to the checkpoint or the sink.\n\n")
	fmt.Fprintf(w, "replay flags:\n")
	fmt.Fprintf(w, "  --batch N     the batch to replay (required; %s checkpoint inspect DIR lists them)\n", c.job.Name)
	fmt.Fprintf(w, "  --query NAME  the query to replay (default: the job's only query)\n")
	fmt.Fprintf(w, "  --json        print the report as JSON\n")
	if c.job.Stream == nil {
		return nil
	}
	l, _, err := c.loader(roleStream)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	l.printUsage(w, roleStream)
	return nil
}

// replayRecorder keeps the queries the job's code gave Env.Start in the
// replay role, each with the checkpoint directory Start would give it.
type replayRecorder struct {
	mu      sync.Mutex
	queries []recordedQuery
}

type recordedQuery struct {
	name, dir string
	w         *microbatch.StreamWriter
}

func (r *replayRecorder) record(e *Env, w *microbatch.StreamWriter, o QueryOptions) error {
	if o.Name == "" {
		return errors.New("jobcli: a query needs QueryOptions.Name")
	}
	if e.Settings.CheckpointDir == "" {
		// A temporary directory holds no batch: the replay needs the
		// checkpoints the job ran with.
		return usagef("query %s: no checkpoint directory: give --checkpoint-dir, the one the job ran with", o.Name)
	}
	dir, err := e.Checkpoint(o.Name)
	if err != nil {
		return err
	}
	w.Checkpoint(dir)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, recordedQuery{name: o.Name, dir: dir, w: w})
	return nil
}

// pick returns the query name, or the only query when name is "".
func (r *replayRecorder) pick(name, job string) (recordedQuery, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, q := range r.queries {
		if q.name == name || (name == "" && len(r.queries) == 1) {
			return q, nil
		}
		names = append(names, q.name)
	}
	switch {
	case len(names) == 0:
		return recordedQuery{}, errors.New("the job started no query (Job.Stream must call env.Start)")
	case name == "":
		return recordedQuery{}, usagef("the job has %d queries: say which with --query (%s)", len(names), strings.Join(names, ", "))
	}
	return recordedQuery{}, usagef("the job has no query %q: want --query %s", name, strings.Join(names, " or "))
}
