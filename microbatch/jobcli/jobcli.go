package jobcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sinks"
)

// Job is a user's job as a command-line program: its name, its typed
// config and the code of each role. Roles the job leaves nil are not
// commands of its binary.
type Job struct {
	// Name is the binary's name in usage lines and the prefix of its
	// environment variables (upper-cased, non-alphanumerics as '_':
	// a job named fraud reads FRAUD_CHECKPOINT_DIR).
	Name string
	// Summary is one line saying what the job does.
	Summary string
	// Config, when set, is a pointer to the job's config struct, filled
	// from flags, environment and the --config file like the common
	// Settings. Its values when Run is called are the defaults. Exported
	// fields are settings (string, bool, integers, floats, time.Duration,
	// time.Time, []string); their struct tags:
	//
	//	sluice:"name"     the flag name and YAML key (default: the field
	//	                  name in kebab case); sluice:"-" skips the field
	//	help:"text"       the flag's help line
	//	roles:"batch stream"  the commands that take it (default: all)
	//	alias:"other"     a second flag name
	//
	// If it has a method Validate() error, that is called after loading;
	// return Invalid(key, ...) there to have the error name the value's
	// source.
	Config any
	// Batch runs the job once over bounded inputs (the batch command).
	// Its Datasets take env.Dataset's config so their tasks run on the
	// cluster in cluster mode and drive the progress bar.
	Batch func(ctx context.Context, env *Env) error
	// Stream starts the job's streaming queries with env.Start and
	// returns; the CLI runs them continuously (stream) or with the
	// AvailableNow trigger over the range env.Settings.From..To, until
	// they stop by themselves (backfill). Then it stops them and runs the
	// functions given to env.Defer.
	Stream func(ctx context.Context, env *Env) error
	// Tasks rebuilds the job's code on an executor from the parameters a
	// driver sends with every task (dataset.Config.Params, set through
	// env.Dataset): the same Datasets and sinks the driver built. Set,
	// it gives the binary the executor command. Resources it opens are
	// closed through env.Defer when the executor stops.
	Tasks func(env *Env, params map[string]string) ([]sinks.Sink, []*dataset.Dataset, error)
	// Commands are extra commands of the binary.
	Commands []Command
}

// Command is an extra command of a job's binary: either another name for
// a role (Role), with that role's settings, or a program of its own (Run).
type Command struct {
	Name    string
	Summary string
	// Role is "batch", "backfill", "stream" or "executor": the command
	// runs that role under its own name.
	Role string
	// Defaults are other default values of settings (by key) for this
	// command: a demo that logs only warnings, say. Flags, environment and
	// the --config file still override them.
	Defaults map[string]string
	// Run runs the command with the arguments after its name. On -h it
	// prints its usage to stdout and returns nil or flag.ErrHelp; a bad
	// argument is returned wrapped by Usage (exit status 2).
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// The built-in roles.
const (
	roleBatch    = "batch"
	roleBackfill = "backfill"
	roleStream   = "stream"
	roleExecutor = "executor"
)

var roleSummary = map[string]string{
	roleBatch:    "run the job once over its bounded inputs, then exit",
	roleBackfill: "run the streaming queries over the range --from..--to (AvailableNow), then exit",
	roleStream:   "run the streaming queries continuously, until SIGINT or SIGTERM",
	roleExecutor: "join a cluster (--join) and run the tasks of this job's drivers, until SIGINT or SIGTERM",
}

// usageError is a command line the binary does not understand.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// Usage marks err as a mistake in the command line: Main exits with
// status 2 for it.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err: err}
}

func usagef(format string, args ...any) error { return Usage(fmt.Errorf(format, args...)) }

// ExitCode is the exit status for the error Run returned: 0 for nil and
// help, 2 for a command-line mistake, 1 for any other failure.
func ExitCode(err error) int {
	var u *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}

// Main runs job with the process's arguments and exits: 0 on success, on
// help and on a stop requested by SIGINT or SIGTERM; 2 for a bad command
// line; 1 for a failure. A second signal kills the process.
func Main(job Job) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal the default action comes back, so a
		// second Ctrl-C ends a stop that takes too long.
		<-ctx.Done()
		stop()
	}()
	err := Run(ctx, job, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", job.Name, err)
	}
	os.Exit(ExitCode(err))
}

// Run runs the command args[0] of job's binary with the rest of args,
// reading the environment of the process. Cancelling ctx is a requested
// stop: a role stops cleanly and returns nil.
func Run(ctx context.Context, job Job, args []string, stdout, stderr io.Writer) error {
	if job.Name == "" {
		return errors.New("jobcli: Job.Name is empty")
	}
	c := &cli{job: job, stdout: stdout, stderr: stderr, getenv: os.LookupEnv}
	return c.run(ctx, args)
}

type cli struct {
	job            Job
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
}

func (c *cli) roles() []string {
	var rs []string
	if c.job.Batch != nil {
		rs = append(rs, roleBatch)
	}
	if c.job.Stream != nil {
		rs = append(rs, roleBackfill, roleStream)
	}
	if c.job.Tasks != nil {
		rs = append(rs, roleExecutor)
	}
	return rs
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s <command> [flags]\n", c.job.Name)
	if c.job.Summary != "" {
		fmt.Fprintf(w, "\n%s\n", c.job.Summary)
	}
	fmt.Fprintf(w, "\ncommands:\n")
	line := func(name, summary string) { fmt.Fprintf(w, "  %-14s %s\n", name, summary) }
	for _, r := range c.roles() {
		line(r, roleSummary[r])
	}
	for _, cmd := range c.job.Commands {
		line(cmd.Name, cmd.Summary)
	}
	line("checkpoint", checkpointSummary)
	line("config print", "print the effective configuration as YAML, with each value's source")
	line("version", "print the module version, VCS revision and Go version")
	line("help", "print this help, or a command's: help <command>")
	fmt.Fprintf(w, "\n'%s <command> -h' lists a command's flags; every flag can also come from the environment (%sFLAG_NAME) or a --config YAML file.\n",
		c.job.Name, envPrefix(c.job.Name))
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

func (c *cli) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		c.usage(c.stderr)
		return usagef("no command")
	}
	name, rest := args[0], args[1:]
	switch {
	case isHelp(name):
		c.usage(c.stdout)
		return nil
	case name == "help":
		if len(rest) == 0 {
			c.usage(c.stdout)
			return nil
		}
		return c.run(ctx, []string{rest[0], "-h"})
	case name == "version":
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprintf(c.stdout, "usage: %s version\n\n%s\n", c.job.Name, "print the module version, VCS revision and time, and Go version of this binary")
			return nil
		}
		if len(rest) > 0 {
			return usagef("version: unexpected argument %q", rest[0])
		}
		fmt.Fprint(c.stdout, versionText(c.job.Name))
		return nil
	case name == "config":
		return c.config(rest)
	case name == "checkpoint":
		return c.checkpoint(ctx, rest)
	}
	for _, cmd := range c.job.Commands {
		if cmd.Name != name {
			continue
		}
		if cmd.Role != "" {
			if !slices.Contains(c.roles(), cmd.Role) {
				return fmt.Errorf("jobcli: command %s runs role %q, which this job does not have", cmd.Name, cmd.Role)
			}
			return c.role(ctx, cmd.Role, cmd.Name, rest)
		}
		err := cmd.Run(ctx, rest, c.stdout, c.stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil // a requested stop
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	if slices.Contains(c.roles(), name) {
		return c.role(ctx, name, name, rest)
	}
	c.usage(c.stderr)
	return usagef("unknown command %q", name)
}

// config runs `config print`.
func (c *cli) config(args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		w := c.stdout
		if len(args) == 0 {
			w = c.stderr
		}
		fmt.Fprintf(w, "usage: %s config print [flags]\n\nprint the effective configuration as YAML (a valid --config file), each value's source in a comment;\nit takes the flags of every command.\n", c.job.Name)
		if len(args) == 0 {
			return usagef("config: want a subcommand: print")
		}
		return nil
	}
	if args[0] != "print" {
		return usagef("config: unknown subcommand %q (want print)", args[0])
	}
	l, _, err := c.load("", "config print", args[1:])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "# %s: the effective configuration; each value's source after '#'\n", c.job.Name)
	return l.print(c.stdout)
}

// loader is the settings of role (the job's, then the common ones) at
// their defaults: what help lists, and where load starts.
func (c *cli) loader(role string) (*loader, *Settings, error) {
	s := defaultSettings(role)
	common, err := settingsOf(&s, false)
	if err != nil {
		return nil, nil, err
	}
	lists := [][]*setting{}
	if c.job.Config != nil {
		js, err := settingsOf(c.job.Config, true)
		if err != nil {
			return nil, nil, err
		}
		lists = append(lists, js)
	}
	l, err := newLoader(envPrefix(c.job.Name), append(lists, common)...)
	return l, &s, err
}

// load builds the settings of role (all roles: "") and fills them from
// the defaults, the --config file, the environment and args, in that
// order of precedence from low to high. It returns (nil, nil,
// flag.ErrHelp) after printing help.
func (c *cli) load(role, command string, args []string) (*loader, *Settings, error) {
	l, s, err := c.loader(role)
	if err != nil {
		return nil, nil, err
	}
	for _, cmd := range c.job.Commands {
		if cmd.Name != command {
			continue
		}
		for k, v := range cmd.Defaults {
			st := l.byKey[k]
			if st == nil {
				return nil, nil, fmt.Errorf("jobcli: command %s: a default for %q, which is no setting", command, k)
			}
			if err := st.set(v); err != nil {
				return nil, nil, fmt.Errorf("jobcli: command %s: default %s=%q: %w", command, k, v, err)
			}
			st.source = "default of " + command
		}
	}
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var pending []pendingFlag
	for _, st := range l.settings {
		if !st.inRole(role) {
			continue
		}
		fs.Var(&flagValue{s: st, name: st.key, pending: &pending}, st.key, st.help)
		if st.alias != "" {
			fs.Var(&flagValue{s: st, name: st.alias, pending: &pending}, st.alias, "same as --"+st.key)
		}
	}
	configFile := fs.String("config", "", "YAML file of settings")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.commandUsage(c.stdout, l, role, command)
			return nil, nil, flag.ErrHelp
		}
		return nil, nil, usagef("%s: %v (%s %s -h lists the flags)", command, err, c.job.Name, command)
	}
	if fs.NArg() > 0 {
		return nil, nil, usagef("%s: unexpected argument %q (flags only; %s %s -h lists them)", command, fs.Arg(0), c.job.Name, command)
	}
	file := *configFile
	if file == "" {
		file, _ = c.getenv(l.envName("config"))
	}
	if file != "" {
		if err := l.file(file); err != nil {
			return nil, nil, err
		}
	}
	if err := l.env(role, c.getenv); err != nil {
		return nil, nil, err
	}
	for _, p := range pending {
		p.s.set(p.raw) // parsed once already
		p.s.source = "flag --" + p.name
	}
	if err := s.validate(); err != nil {
		return nil, nil, l.explain(err)
	}
	if v, ok := c.job.Config.(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, nil, l.explain(err)
		}
	}
	return l, s, nil
}

func (c *cli) commandUsage(w io.Writer, l *loader, role, command string) {
	fmt.Fprintf(w, "usage: %s %s [flags]\n", c.job.Name, command)
	if s := roleSummary[role]; s != "" {
		fmt.Fprintf(w, "\n%s\n", s)
	}
	l.printUsage(w, role)
}

// pendingFlag is a flag's value, applied after the file and environment
// (flags win).
type pendingFlag struct {
	s         *setting
	name, raw string
}

// Parse loads the settings of job's command (a role, or a Command with a
// Role) from args, the process's environment and a --config file, as
// running it would, and returns them without running anything; the job's
// Config is filled too. Deployment tests use it to check the arguments
// their manifests give a binary.
func Parse(job Job, command string, args []string) (*Settings, error) {
	c := &cli{job: job, stdout: io.Discard, stderr: io.Discard, getenv: os.LookupEnv}
	role := command
	for _, cmd := range job.Commands {
		if cmd.Name == command {
			role = cmd.Role
		}
	}
	if !slices.Contains(c.roles(), role) {
		return nil, usagef("%s is not a command of %s that runs a role", command, job.Name)
	}
	_, s, err := c.load(role, command, args)
	return s, err
}
