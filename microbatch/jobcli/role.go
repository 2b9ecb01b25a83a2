package jobcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/sluicedata/sluice/cluster"
	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks"
)

// role runs one of the job's roles as command: load the settings, make
// the logger (and the driver in cluster mode), run, stop cleanly.
func (c *cli) role(ctx context.Context, role, command string, args []string) error {
	l, s, err := c.load(role, command, args)
	if err != nil {
		return err
	}
	log := newLogger(c.stderr, s.LogLevel, s.LogFormat)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	env := &Env{Role: role, Log: log, Stdout: c.stdout, Stderr: c.stderr, Settings: *s, stop: stop, jobName: c.job.Name}
	env.reg, env.metrics = newRegistry()
	if role == roleExecutor {
		return c.executor(runCtx, env)
	}
	if len(s.Cluster.Join) == 0 {
		var stray []string
		for _, st := range l.settings {
			// Flags only: a --config file may be shared with the executors.
			if !st.job && strings.HasPrefix(st.source, "flag ") && slices.Contains(st.roles, roleExecutor) && slices.Contains(st.roles, roleBatch) && st.key != "join" {
				stray = append(stray, "--"+st.key)
			}
		}
		if len(stray) > 0 {
			return usagef("%s: %s: cluster settings need --join (or --cluster-join): without it the job runs in this process", command, strings.Join(stray, ", "))
		}
	} else {
		cfg, err := clusterConfig(s.Cluster, log)
		if err != nil {
			return fmt.Errorf("%s: %w", command, err)
		}
		d, err := cluster.StartDriver(runCtx, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", command, startError(s.Cluster, err))
		}
		defer d.Close()
		env.Cluster = d
		log.Info("driver started", "node", d.Name(), "gossip", d.Gossip(), "flight", d.Flight(), "seeds", strings.Join(s.Cluster.Join, ","))
		wctx, stopWatching := context.WithCancel(runCtx)
		defer stopWatching()
		go watchExecutors(wctx, d, log)
	}
	eps, err := serve(runCtx, env, env.reg)
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	defer eps.close()
	env.UIURL, env.MetricsURL = eps.UIURL, eps.MetricsURL
	if eps.UIURL != "" {
		log.Info("web UI", "url", eps.UIURL)
	}
	if eps.MetricsURL != "" {
		log.Info("metrics", "url", eps.MetricsURL)
	}
	if (role == roleBatch || role == roleBackfill) && showBar(s.Progress, c.stderr) {
		env.bar = newBar(c.stderr)
	}
	log.Info(command+" started", "role", role)
	start := time.Now()
	var runErr error
	switch role {
	case roleBatch:
		runErr = c.job.Batch(runCtx, env)
	default:
		runErr = c.queries(runCtx, env)
	}
	if env.bar != nil {
		env.bar.close()
	}
	var inv *InvalidError
	if errors.As(runErr, &inv) {
		runErr = l.explain(runErr) // a setting the job's code refused
	}
	err = errors.Join(runErr, env.finish())
	requested := runCtx.Err() != nil
	switch {
	case requested && (err == nil || onlyCanceled(err)):
		log.Info(command+" stopped on request; a batch in flight was abandoned (a query's re-runs from its checkpoint)", "took", time.Since(start).Round(time.Millisecond))
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", command, err) // Main prints it

	}
	log.Info(command+" done", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// queries runs the stream and backfill roles: the job starts its queries,
// then they run until a stop (stream), or until they have read all their
// input (backfill), or one fails.
func (c *cli) queries(ctx context.Context, env *Env) error {
	if err := c.job.Stream(ctx, env); err != nil {
		env.stopQueries(nil)
		return err
	}
	qs := env.Queries()
	if len(qs) == 0 {
		return errors.New("the job started no query (Job.Stream must call env.Start)")
	}
	ended := make(chan error, len(qs))
	for _, q := range qs {
		go func() { ended <- q.AwaitTermination() }()
	}
	for n := 0; n < len(qs); n++ {
		select {
		case <-ctx.Done():
			env.Log.Info("stopping the queries")
			return env.stopQueries(nil)
		case err := <-ended:
			if err != nil || env.Role == roleStream {
				// A continuous query does not end by itself: whatever ended
				// it ends the job, and the others stop.
				stopErr := env.stopQueries(err) // Stop returns err again for its query
				if err == nil {
					err = errors.New("a query ended by itself")
				}
				return errors.Join(err, stopErr)
			}
		}
	}
	return nil
}

// onlyCanceled reports whether err is context.Canceled and nothing else
// (every error joined in it is).
func onlyCanceled(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyCanceled(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, context.Canceled)
}

// stopQueries stops every query; Stop abandons the batch in flight, which
// re-runs from the checkpoint on restart. An error that is ended (the
// failure the caller reports already) is left out.
func (e *Env) stopQueries(ended error) error {
	var errs []error
	for _, q := range e.Queries() {
		if err := q.Stop(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, ended) {
			errs = append(errs, fmt.Errorf("query %s: %w", q.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func showBar(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// executor runs the executor role: a cluster member that runs the tasks
// of this job's drivers until ctx ends, then leaves the cluster.
func (c *cli) executor(ctx context.Context, env *Env) error {
	s, log := env.Settings.Cluster, env.Log
	cfg, err := clusterConfig(s, log)
	if err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	if s.WorkDir != "" {
		if err := os.MkdirAll(s.WorkDir, 0o700); err != nil {
			return fmt.Errorf("executor: --work-dir: %w", err)
		}
	}
	cfg.Slots, cfg.SpillDir, cfg.MemoryLimit = s.Slots, s.WorkDir, s.Memory
	if cfg.Slots <= 0 {
		cfg.Slots = runtime.GOMAXPROCS(0)
	}
	// The task server builds the job once per set of parameters and
	// keeps it; what the job opened closes when the executor stops.
	srv := dataset.NewTaskServer(dataset.Config{}, func(params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error) {
		return c.job.Tasks(env, params)
	})
	defer srv.Close()
	if s.WorkDir != "" {
		srv.StateLocalDir = filepath.Join(s.WorkDir, "state")
	}
	eps, err := serve(ctx, env, env.reg)
	if err != nil {
		return fmt.Errorf("executor: %w", err)
	}
	defer eps.close()
	if eps.MetricsURL != "" {
		log.Info("metrics", "url", eps.MetricsURL)
	}
	e, err := cluster.StartExecutor(ctx, cfg, srv)
	if err != nil {
		env.finish()
		return fmt.Errorf("executor: %w", startError(s, err))
	}
	if err := registerExecutor(env.reg, e); err != nil {
		e.Close()
		env.finish()
		return fmt.Errorf("executor: metrics: %w", err)
	}
	if len(cfg.Seeds) == 0 {
		log.Info("no --join: this executor starts a cluster of its own; others join it at its --bind address")
	}
	log.Info("executor ready", "node", e.Name(), "gossip", e.Gossip(), "flight", e.Flight(), "seeds", strings.Join(s.Join, ","), "slots", cfg.Slots, "fingerprint", cluster.Fingerprint())

	// A line when the task count moved, at most every 10 s: the executor
	// is visibly working without a line per task.
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	var reported int64
	events := e.Membership().Events()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			log.Info("member "+ev.Kind, "node", e.Name(), "member", ev.Member.Name, "role", ev.Member.Meta.Role, "flight", ev.Member.Meta.Flight)
		case <-tick.C:
			if n := e.Tasks(); n != reported {
				log.Info("tasks run", "node", e.Name(), "tasks", n, "block_memory", e.BlockMemory(), "spilled_blocks", e.Spilled())
				reported = n
			}
		}
	}
	tasks := e.Tasks()
	if err := e.Close(); err != nil {
		// Usual when it is the last member (nobody left to confirm); else
		// the others find it gone by probing, as after a crash, and the
		// driver re-runs whatever it held. Not a failure of this stop.
		log.Info("left the cluster; no member confirmed the goodbye", "node", e.Name(), "err", err)
	}
	ferr := env.finish()
	log.Info("executor stopped", "node", e.Name(), "tasks", tasks)
	return ferr
}

// clusterConfig loads the key material and returns the member's
// configuration. Every error names the setting and the file it is about.
func clusterConfig(c ClusterSettings, log *slog.Logger) (cluster.Config, error) {
	for _, f := range []struct{ name, val string }{{"gossip-key-file", c.GossipKeyFile}, {"tls-ca", c.TLSCA}, {"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}} {
		if f.val == "" {
			return cluster.Config{}, Usage(fmt.Errorf("--%s is required in cluster mode (sluice certs --dir DIR makes the files)", f.name))
		}
	}
	key, err := cluster.LoadGossipKey(c.GossipKeyFile)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("--gossip-key-file: %w", err)
	}
	id, err := cluster.TLSFiles{CA: c.TLSCA, Cert: c.TLSCert, Key: c.TLSKey}.Load()
	if err != nil {
		return cluster.Config{}, fmt.Errorf("%s: %w", tlsFlagOf(c, err), err)
	}
	return cluster.Config{Bind: c.Bind, Flight: c.Flight, Advertise: c.Advertise, Seeds: c.Join,
		GossipKey: key, TLS: id, Logger: log, JoinTimeout: c.JoinTimeout}, nil
}

// tlsFlagOf names the TLS setting whose file an error of TLSFiles.Load is
// about: the file it names first (its messages read "key file K: key does
// not match the certificate file C": the key is at fault).
func tlsFlagOf(c ClusterSettings, err error) string {
	msg := err.Error()
	best, at := "--tls-ca, --tls-cert, --tls-key", len(msg)
	for _, f := range []struct{ flag, phrase string }{
		{"--tls-ca", "CA file " + c.TLSCA}, {"--tls-cert", "certificate file " + c.TLSCert}, {"--tls-key", "key file " + c.TLSKey},
	} {
		if i := strings.Index(msg, f.phrase); i >= 0 && i < at {
			best, at = f.flag, i
		}
	}
	return best
}

// startError says which setting a failure to start a member is about:
// package cluster names the address or seed, this adds the flag.
func startError(c ClusterSettings, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "listen for Flight"):
		return fmt.Errorf("--flight %s: %w", c.Flight, err)
	case strings.Contains(msg, "listen for gossip"), strings.Contains(msg, "join cluster: bind"):
		return fmt.Errorf("--bind %s: %w", c.Bind, err)
	case strings.Contains(msg, "join cluster: advertise"):
		return fmt.Errorf("--advertise %s: %w", c.Advertise, err)
	case strings.Contains(msg, "join seeds"):
		return fmt.Errorf("--join %s: %w", strings.Join(c.Join, ","), err)
	}
	return err
}

// watchExecutors logs the executors the driver gives work to as they come
// and go, checking every second until ctx ends.
func watchExecutors(ctx context.Context, d *cluster.Driver, log *slog.Logger) {
	known := map[string]cluster.Member{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		live := map[string]cluster.Member{}
		for _, m := range d.Executors() {
			live[m.Name] = m
			if _, ok := known[m.Name]; !ok {
				log.Info("executor joined", "node", m.Name, "gossip", m.Gossip, "flight", m.Meta.Flight, "slots", m.Meta.Slots)
			}
		}
		for name, m := range known {
			if _, ok := live[name]; !ok {
				log.Warn("executor left or failed", "node", name, "gossip", m.Gossip, "flight", m.Meta.Flight)
			}
		}
		known = live
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// versionText is the version command's output, from the build info Go
// records in the binary.
func versionText(name string) string {
	var b strings.Builder
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintf(&b, "%s (no build information)\ngo %s\n", name, runtime.Version())
		return b.String()
	}
	fmt.Fprintf(&b, "%s %s\n", name, bi.Main.Version)
	fmt.Fprintf(&b, "module   %s\n", bi.Main.Path)
	for _, d := range bi.Deps {
		if d.Path == "github.com/sluicedata/sluice" {
			fmt.Fprintf(&b, "sluice   %s\n", d.Version)
		}
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (modified)"
			}
		}
	}
	if rev == "" {
		rev = "unknown (built without VCS information)"
	}
	fmt.Fprintf(&b, "revision %s%s\n", rev, modified)
	if at != "" {
		fmt.Fprintf(&b, "time     %s\n", at)
	}
	fmt.Fprintf(&b, "go       %s\n", bi.GoVersion)
	fmt.Fprintf(&b, "plan fingerprint %s\n", cluster.Fingerprint())
	return b.String()
}
