package jobcli

import (
	"errors"

	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/sluicedata/sluice/microbatch"
)

// Settings are the settings every job binary has, loaded by the same
// machinery as the job's own config (flags > environment > file >
// defaults). A role sees the settings whose roles tag names it.
type Settings struct {
	CheckpointDir   string        `sluice:"checkpoint-dir" alias:"checkpoint" roles:"backfill stream" help:"directory or URL (s3://bucket/prefix?region=..., gs://, azblob://) of the queries' checkpoints, one subdirectory per query (default: a temp dir removed at exit: a restart starts over)"`
	TriggerInterval time.Duration `sluice:"trigger-interval" roles:"stream" help:"how often a micro-batch starts (default: each query's own interval)"`
	StateBackend    string        `sluice:"state-backend" roles:"backfill stream" help:"where stateful operators keep their state between batches: memory, or disk (local pebble databases, for state larger than memory; same checkpoint files) (default: memory)"`
	StateLocalDir   string        `sluice:"state-local-dir" roles:"backfill stream" help:"directory of the disk state backend's local databases, a cache of the checkpoint (default: under the system temp dir, named after the checkpoint)"`
	From            string        `sluice:"from" roles:"backfill" help:"start of the range to backfill, as the job reads it (a time, a date, an offset)"`
	To              string        `sluice:"to" roles:"backfill" help:"end of the range to backfill, as the job reads it"`
	LogLevel        string        `sluice:"log-level" help:"log level: debug, info, warn or error"`
	LogFormat       string        `sluice:"log-format" help:"log format on stderr: text or json"`
	Progress        string        `sluice:"progress" roles:"batch backfill" help:"progress bar on stderr: auto (on a terminal), always or never"`
	// UIAddr is where a driver serves its web UI (and /metrics, unless
	// MetricsAddr says otherwise): host:port, "" for none. The default
	// port is Spark's; when it is taken the next free one is used (as
	// Spark does), an explicit one must be free.
	UIAddr string `sluice:"ui-addr" roles:"batch backfill stream" help:"address of the web UI and its /metrics, host:port (\"\": none)"`
	// MetricsAddr is a separate address for Prometheus's /metrics (an
	// executor's only HTTP endpoint); "" serves them on the UI's address.
	MetricsAddr string `sluice:"metrics-addr" help:"address of a separate /metrics endpoint, host:port (default: on the UI's address; executors: none)"`

	Cluster ClusterSettings
	Restart RestartSettings
}

// RestartSettings say whether and when the stream and backfill roles'
// queries restart themselves from their checkpoints after a transient
// failure (microbatch.RestartStrategy, microbatch.Transient); the
// defaults are microbatch.DefaultRestartStrategy's. They apply to every
// query Env.Start starts.
type RestartSettings struct {
	Strategy   string        `sluice:"restart-strategy" roles:"backfill stream" help:"what a query does after a transient failure (broker unreachable, coordinator moved, a timeout, a reset connection, an executor lost): exponential-delay, fixed-delay or failure-rate restart it from its checkpoint, none stops it; other failures always stop it"`
	Delay      time.Duration `sluice:"restart-delay" roles:"backfill stream" help:"wait before a restart (fixed-delay, failure-rate) or before the first one (exponential-delay)"`
	MaxDelay   time.Duration `sluice:"restart-max-delay" roles:"backfill stream" help:"exponential-delay: the longest wait"`
	Multiplier float64       `sluice:"restart-multiplier" roles:"backfill stream" help:"exponential-delay: the wait grows by this factor after each failure"`
	Jitter     float64       `sluice:"restart-jitter" roles:"backfill stream" help:"each wait is spread at random over ± this fraction of it, in [0, 1)"`
	ResetAfter time.Duration `sluice:"restart-reset-after" roles:"backfill stream" help:"exponential-delay: a query that ran this long without failing starts over at --restart-delay (0: never)"`
	Attempts   int           `sluice:"restart-attempts" roles:"backfill stream" help:"most restarts in all, or within --restart-window for failure-rate; then the next transient failure stops the query (0: unbounded; failure-rate needs one)"`
	Window     time.Duration `sluice:"restart-window" roles:"backfill stream" help:"failure-rate: the interval --restart-attempts counts restarts in"`
}

// strategy is the microbatch.RestartStrategy the settings describe.
func (r RestartSettings) strategy() (microbatch.RestartStrategy, error) {
	// fixed-delay and failure-rate have no growth: their strategy leaves
	// exponential-delay's settings out, so it prints as what it does.
	s := microbatch.RestartStrategy{Delay: r.Delay, Jitter: r.Jitter, MaxAttempts: r.Attempts}
	switch r.Strategy {
	case "exponential-delay":
		s.Kind, s.MaxDelay, s.Multiplier, s.ResetAfter = microbatch.RestartExponentialDelay, r.MaxDelay, r.Multiplier, r.ResetAfter
	case "fixed-delay":
		s.Kind = microbatch.RestartFixedDelay
	case "failure-rate":
		s.Kind, s.Window = microbatch.RestartFixedDelay, r.Window
		if s.Window == 0 {
			return s, Invalid("restart-window", "failure-rate needs an interval to count restarts in")
		}
		if s.MaxAttempts == 0 {
			return s, Invalid("restart-attempts", "failure-rate needs the most restarts in --restart-window")
		}
	case "none":
		return microbatch.NoRestart(), nil
	default:
		return s, Invalid("restart-strategy", "%q: want exponential-delay, fixed-delay, failure-rate or none", r.Strategy)
	}
	if r.Window != 0 && r.Strategy != "failure-rate" {
		return s, Invalid("restart-window", "%s: only failure-rate counts restarts in a window", r.Strategy)
	}
	if err := s.Validate(); err != nil {
		return s, Invalid("restart-strategy", "%v", err)
	}
	return s, nil
}

// ClusterSettings say how a driver (batch, backfill, stream with --join)
// or an executor joins a cluster.
type ClusterSettings struct {
	Join          []string      `sluice:"join" alias:"cluster-join" roles:"batch backfill stream executor" help:"gossip seeds of the cluster, host:port[,host:port]: a driver runs its tasks on the executors found there; an executor joins through them (its own --bind is fine for the first one)"`
	Bind          string        `sluice:"bind" roles:"batch backfill stream executor" help:"gossip address, ip:port (TCP and UDP); 0.0.0.0 only if you mean every interface"`
	Flight        string        `sluice:"flight" roles:"batch backfill stream executor" help:"Arrow Flight (task and shuffle) address, ip:port"`
	Advertise     string        `sluice:"advertise" roles:"batch backfill stream executor" help:"host other members reach this one at (default: the --bind and --flight IPs)"`
	GossipKeyFile string        `sluice:"gossip-key-file" roles:"batch backfill stream executor" help:"file with the base64 gossip key (sluice certs writes gossip.key)"`
	TLSCA         string        `sluice:"tls-ca" roles:"batch backfill stream executor" help:"the cluster CA certificate, PEM (sluice certs writes ca.pem)"`
	TLSCert       string        `sluice:"tls-cert" roles:"batch backfill stream executor" help:"this member's certificate, PEM, signed by the CA"`
	TLSKey        string        `sluice:"tls-key" roles:"batch backfill stream executor" help:"this member's private key, PEM"`
	JoinTimeout   time.Duration `sluice:"join-timeout" roles:"batch backfill stream executor" help:"how long to keep trying the seeds"`
	Slots         int           `sluice:"slots" roles:"executor" help:"tasks run at once (default: the number of CPUs)"`
	WorkDir       string        `sluice:"work-dir" roles:"executor" help:"directory for map output spilled to disk (default: a temp dir, removed at exit)"`
	Memory        int64         `sluice:"memory" roles:"executor" help:"bytes of map output kept in memory before spilling to --work-dir (default 256 MiB)"`
}

// defaultSettings are the defaults of role: an executor listens on fixed
// ports (a seed list can be written down); a driver's are chosen at run
// time (nobody joins through it).
func defaultSettings(role string) Settings {
	s := Settings{LogLevel: "info", LogFormat: "text", Progress: "auto", UIAddr: defaultUIAddr}
	s.Cluster.JoinTimeout = 30 * time.Second
	d := microbatch.DefaultRestartStrategy()
	s.Restart = RestartSettings{Strategy: string(d.Kind), Delay: d.Delay, MaxDelay: d.MaxDelay, Multiplier: d.Multiplier,
		Jitter: d.Jitter, ResetAfter: d.ResetAfter, Attempts: d.MaxAttempts}
	s.Cluster.Bind, s.Cluster.Flight = "127.0.0.1:0", "127.0.0.1:0"
	if role == roleExecutor {
		s.Cluster.Bind, s.Cluster.Flight = "127.0.0.1:7946", "127.0.0.1:7947"
	}
	return s
}

// validate checks the common settings; errors name the key (the
// loader adds its source).
func (s *Settings) validate() error {
	if _, err := parseLevel(s.LogLevel); err != nil {
		return Invalid("log-level", "%q: want debug, info, warn or error", s.LogLevel)
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		return Invalid("log-format", "%q: want text or json", s.LogFormat)
	}
	if s.Progress != "auto" && s.Progress != "always" && s.Progress != "never" {
		return Invalid("progress", "%q: want auto, always or never", s.Progress)
	}
	if s.StateBackend != "" && s.StateBackend != "memory" && s.StateBackend != "disk" {
		return Invalid("state-backend", "%q: want memory or disk", s.StateBackend)
	}
	if _, err := s.Restart.strategy(); err != nil {
		return err
	}
	if s.Cluster.Slots < 0 {
		return Invalid("slots", "%d: want 0 (the number of CPUs) or more", s.Cluster.Slots)
	}
	return nil
}

// InvalidError is a setting's value refused by validation; the CLI adds
// where the value came from (a flag, an environment variable, a file
// line or the default).
type InvalidError struct {
	Key string
	Err error
}

func (e *InvalidError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Invalid is the error a job config's Validate method returns for a bad
// value of the setting key: the CLI then names the value's source.
func Invalid(key, format string, args ...any) error {
	return &InvalidError{Key: key, Err: fmt.Errorf(format, args...)}
}

// A setting is one configurable value: a field of Settings or of the
// job's config struct, with where its value came from.
type setting struct {
	key    string   // the flag name, YAML key and (upper-cased) env suffix
	alias  string   // another flag name for it
	help   string   //
	roles  []string // nil: every role
	job    bool     // a field of the job's config
	v      reflect.Value
	source string // "default", "file F:L", "env X", "flag --k"
}

func (s *setting) inRole(role string) bool {
	return s.roles == nil || role == "" || slices.Contains(s.roles, role)
}

// settingsOf lists the settings of the struct *ptr, recursing into
// nested structs (ClusterSettings). Keys come from the sluice tag or the
// field's name in kebab case; `sluice:"-"` skips a field.
func settingsOf(ptr any, job bool) ([]*setting, error) {
	rv := reflect.ValueOf(ptr)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("jobcli: config must be a pointer to a struct, not %T", ptr)
	}
	var out []*setting
	var walk func(v reflect.Value) error
	walk = func(v reflect.Value) error {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Tag.Get("sluice") == "-" {
				continue
			}
			fv := v.Field(i)
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Time]() {
				if err := walk(fv); err != nil {
					return err
				}
				continue
			}
			if !supported(f.Type) {
				return fmt.Errorf("jobcli: config field %s: type %s is not supported (string, bool, integers, floats, time.Duration, time.Time, []string)", f.Name, f.Type)
			}
			s := &setting{key: f.Tag.Get("sluice"), alias: f.Tag.Get("alias"), help: f.Tag.Get("help"), job: job, v: fv, source: "default"}
			if s.key == "" {
				s.key = kebab(f.Name)
			}
			if r := f.Tag.Get("roles"); r != "" {
				s.roles = strings.Fields(r)
			}
			out = append(out, s)
		}
		return nil
	}
	return out, walk(rv.Elem())
}

func supported(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[time.Duration](), reflect.TypeFor[time.Time](), reflect.TypeFor[[]string]():
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// kebab turns a Go field name into a flag name: CheckpointDir ->
// checkpoint-dir, MaxRowsPerBatch -> max-rows-per-batch, TLSCA -> tlsca.
func kebab(name string) string {
	var b strings.Builder
	rs := []rune(name)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || (i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1]))) {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// set parses raw into the setting's field.
func (s *setting) set(raw string) error {
	v := s.v
	switch v.Type() {
	case reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 500ms, 2s, 1h30m)", raw)
		}
		v.SetInt(int64(d))
		return nil
	case reflect.TypeFor[time.Time]():
		for _, layout := range []string{time.RFC3339Nano, time.DateTime, time.DateOnly} {
			if t, err := time.Parse(layout, raw); err == nil {
				v.Set(reflect.ValueOf(t))
				return nil
			}
		}
		return fmt.Errorf("%q is not a time (RFC 3339, \"2006-01-02 15:04:05\" or 2006-01-02)", raw)
	case reflect.TypeFor[[]string]():
		var list []string
		for _, p := range strings.Split(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		v.Set(reflect.ValueOf(list))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.ReplaceAll(raw, "_", ""), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer of %d bits", raw, v.Type().Bits())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.ReplaceAll(raw, "_", ""), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an unsigned integer of %d bits", raw, v.Type().Bits())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(raw, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetFloat(f)
	}
	return nil
}

// format is v as set parses it back.
func format(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.Format(time.RFC3339Nano)
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v.Interface())
}

// flagValue is a setting as a flag.Value. A flag's value is checked when
// parsed and applied after the file and the environment (flags win).
type flagValue struct {
	s       *setting
	name    string
	pending *[]pendingFlag
}

func (f *flagValue) String() string {
	if f == nil || f.s == nil {
		return ""
	}
	return format(f.s.v)
}

func (f *flagValue) Set(raw string) error {
	scratch := *f.s
	scratch.v = reflect.New(f.s.v.Type()).Elem()
	if err := scratch.set(raw); err != nil {
		return err
	}
	*f.pending = append(*f.pending, pendingFlag{s: f.s, name: f.name, raw: raw})
	return nil
}

func (f *flagValue) IsBoolFlag() bool { return f.s.v.Kind() == reflect.Bool }

// loader loads a command's settings: defaults, then the file, then the
// environment, then the flags.
type loader struct {
	prefix   string // env prefix: FRAUD_ for a job named fraud
	settings []*setting
	byKey    map[string]*setting
}

func newLoader(prefix string, lists ...[]*setting) (*loader, error) {
	l := &loader{prefix: prefix, byKey: map[string]*setting{}}
	for _, list := range lists {
		for _, s := range list {
			for _, k := range []string{s.key, s.alias} {
				if k == "" {
					continue
				}
				if _, dup := l.byKey[k]; dup || k == "config" || k == "h" || k == "help" {
					return nil, fmt.Errorf("jobcli: two settings named %q (the job's config and the common settings share one namespace; config, h and help are taken)", k)
				}
				l.byKey[k] = s
			}
			l.settings = append(l.settings, s)
		}
	}
	return l, nil
}

// envName is the environment variable of a setting: the job's name and
// the key upper-cased, '-' as '_' (SLUICE_CHECKPOINT_DIR).
func (l *loader) envName(key string) string {
	return l.prefix + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
}

// envPrefix is a job name as an environment variable prefix.
func envPrefix(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "_"
}

// file applies a YAML file of key: value pairs (keys are the flag names);
// an unknown key or a bad value is an error naming the file and line.
func (l *loader) file(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s:%d: want a mapping of setting: value", path, m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		at := fmt.Sprintf("%s:%d", path, k.Line)
		s, ok := l.byKey[k.Value]
		if !ok || k.Value != s.key {
			return fmt.Errorf("config file %s: unknown key %q (known: %s)", at, k.Value, strings.Join(l.keys(), ", "))
		}
		var raw string
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			continue
		case v.Kind == yaml.ScalarNode:
			raw = v.Value
		case v.Kind == yaml.SequenceNode && s.v.Type() == reflect.TypeFor[[]string]():
			var items []string
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("config file %s: %s: want a list of strings", at, k.Value)
				}
				items = append(items, it.Value)
			}
			raw = strings.Join(items, ",")
		default:
			return fmt.Errorf("config file %s: %s: want a single value", at, k.Value)
		}
		if err := s.set(raw); err != nil {
			return fmt.Errorf("config file %s: %s: %w", at, k.Value, err)
		}
		s.source = "file " + at
	}
	return nil
}

func (l *loader) keys() []string {
	var ks []string
	for _, s := range l.settings {
		ks = append(ks, s.key)
	}
	slices.Sort(ks)
	return ks
}

// env applies the environment variables of the settings of role.
func (l *loader) env(role string, getenv func(string) (string, bool)) error {
	for _, s := range l.settings {
		if !s.inRole(role) {
			continue
		}
		name := l.envName(s.key)
		raw, ok := getenv(name)
		if !ok {
			continue
		}
		if err := s.set(raw); err != nil {
			return fmt.Errorf("env %s: %w", name, err)
		}
		s.source = "env " + name
	}
	return nil
}

// printUsage writes the settings of role as help lines.
func (l *loader) printUsage(w io.Writer, role string) {
	var common, job []*setting
	for _, s := range l.settings {
		if !s.inRole(role) {
			continue
		}
		if s.job {
			job = append(job, s)
		} else {
			common = append(common, s)
		}
	}
	section := func(title string, list []*setting) {
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, s := range list {
			name := "--" + s.key
			if s.alias != "" {
				name += ", --" + s.alias
			}
			if t := typeName(s.v.Type()); t != "" {
				name += " " + t
			}
			fmt.Fprintf(w, "  %s\n", name)
			// Help runs before the file, the environment and the flags
			// apply: the value is the default (a command's own, if any).
			help := s.help
			if def := format(s.v); def != "" && def != "0" && def != "false" && def != "0s" {
				help += fmt.Sprintf(" (default %s)", def)
			}
			fmt.Fprintf(w, "        %s [env %s]\n", help, l.envName(s.key))
		}
	}
	section("the job's settings", job)
	section("settings", common)
	fmt.Fprintf(w, "  --config FILE\n        a YAML file of setting: value (keys as the flags above); flags win over the environment, the environment over the file [env %s]\n", l.envName("config"))
}

func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "DURATION"
	case reflect.TypeFor[time.Time]():
		return "TIME"
	case reflect.TypeFor[[]string]():
		return "LIST"
	}
	switch t.Kind() {
	case reflect.Bool:
		return ""
	case reflect.String:
		return "STRING"
	case reflect.Float32, reflect.Float64:
		return "NUMBER"
	}
	return "INT"
}

// print writes the effective settings as YAML, each value's source in a
// comment; the output is a valid --config file.
func (l *loader) print(w io.Writer) error {
	width := 0
	lines := make([][2]string, 0, len(l.settings))
	for _, s := range l.settings {
		val, err := yamlValue(s.v)
		if err != nil {
			return fmt.Errorf("print %s: %w", s.key, err)
		}
		line := s.key + ": " + val
		width = max(width, len(line))
		lines = append(lines, [2]string{line, s.source})
	}
	for _, ln := range lines {
		fmt.Fprintf(w, "%-*s  # %s\n", width, ln[0], ln[1])
	}
	return nil
}

func yamlValue(v reflect.Value) (string, error) {
	if list, ok := v.Interface().([]string); ok {
		items := make([]string, len(list))
		for i, it := range list {
			b, err := yaml.Marshal(it)
			if err != nil {
				return "", err
			}
			items[i] = strings.TrimSuffix(string(b), "\n")
		}
		return "[" + strings.Join(items, ", ") + "]", nil
	}
	var x any = format(v)
	switch v.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		if v.Type() != reflect.TypeFor[time.Duration]() {
			x = v.Interface()
		}
	}
	b, err := yaml.Marshal(x)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// validator is what a job's config may implement: Validate is called
// after loading.
type validator interface{ Validate() error }

// explain adds the source of the setting an InvalidError names.
func (l *loader) explain(err error) error {
	var inv *InvalidError
	if errors.As(err, &inv) {
		if s, ok := l.byKey[inv.Key]; ok {
			return fmt.Errorf("invalid setting %s (from %s): %w", inv.Key, s.source, inv.Err)
		}
	}
	return fmt.Errorf("invalid configuration: %w", err)
}
