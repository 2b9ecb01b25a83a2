package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sluicedata/sluice/cluster"
)

// clusterFlags are the flags a driver (sluice demo) and an executor share:
// where this member listens and is reached, the seeds it joins through,
// and its key material.
type clusterFlags struct {
	joinFlag    string // "join" (executor) or "cluster-join" (driver)
	join        string
	bind        string
	flight      string
	advertise   string
	keyFile     string
	ca          string
	cert        string
	key         string
	joinTimeout time.Duration
}

// register adds the flags to fs; bind and flight are the defaults of the
// role (fixed ports for an executor, so a seed list can be written down;
// chosen at run time for a driver, which nobody joins through).
func (c *clusterFlags) register(fs *flag.FlagSet, joinFlag, joinUsage, bind, flight string) {
	c.joinFlag = joinFlag
	fs.StringVar(&c.join, joinFlag, "", joinUsage)
	fs.StringVar(&c.bind, "bind", bind, "gossip address, ip:port (TCP and UDP); 0.0.0.0 only if you mean every interface")
	fs.StringVar(&c.flight, "flight", flight, "Arrow Flight (task and shuffle) address, ip:port")
	fs.StringVar(&c.advertise, "advertise", "", "host other members reach this one at (default: the --bind and --flight IPs)")
	fs.StringVar(&c.keyFile, "gossip-key-file", "", "file with the base64 gossip key (sluice certs writes gossip.key)")
	fs.StringVar(&c.ca, "tls-ca", "", "the cluster CA certificate, PEM (sluice certs writes ca.pem)")
	fs.StringVar(&c.cert, "tls-cert", "", "this member's certificate, PEM, signed by the CA")
	fs.StringVar(&c.key, "tls-key", "", "this member's private key, PEM")
	fs.DurationVar(&c.joinTimeout, "join-timeout", 30*time.Second, "how long to keep trying the seeds")
}

// isClusterFlag reports whether name is one of the flags register adds.
func (c *clusterFlags) isClusterFlag(name string) bool {
	switch name {
	case c.joinFlag, "bind", "flight", "advertise", "gossip-key-file", "tls-ca", "tls-cert", "tls-key", "join-timeout":
		return true
	}
	return false
}

// seeds splits the join flag's host:port list.
func (c *clusterFlags) seeds() []string { return split(c.join) }

// config loads the key material and returns the member's configuration.
// Every error names the flag and the file it is about.
func (c *clusterFlags) config(log *slog.Logger) (cluster.Config, error) {
	for _, f := range []struct{ name, val string }{{"gossip-key-file", c.keyFile}, {"tls-ca", c.ca}, {"tls-cert", c.cert}, {"tls-key", c.key}} {
		if f.val == "" {
			return cluster.Config{}, fmt.Errorf("--%s is required in cluster mode (sluice certs --dir DIR makes the files)", f.name)
		}
	}
	key, err := cluster.LoadGossipKey(c.keyFile)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("--gossip-key-file: %w", err)
	}
	id, err := cluster.TLSFiles{CA: c.ca, Cert: c.cert, Key: c.key}.Load()
	if err != nil {
		return cluster.Config{}, fmt.Errorf("%s: %w", c.tlsFlagOf(err), err)
	}
	return cluster.Config{Bind: c.bind, Flight: c.flight, Advertise: c.advertise, Seeds: c.seeds(),
		GossipKey: key, TLS: id, Logger: log, JoinTimeout: c.joinTimeout}, nil
}

// tlsFlagOf names the TLS flag whose file an error of TLSFiles.Load is
// about: the file it names first (its messages read "key file K: key does
// not match the certificate file C": the key is at fault).
func (c *clusterFlags) tlsFlagOf(err error) string {
	msg := err.Error()
	best, at := "--tls-ca, --tls-cert, --tls-key", len(msg)
	for _, f := range []struct{ flag, phrase string }{
		{"--tls-ca", "CA file " + c.ca}, {"--tls-cert", "certificate file " + c.cert}, {"--tls-key", "key file " + c.key},
	} {
		if i := strings.Index(msg, f.phrase); i >= 0 && i < at {
			best, at = f.flag, i
		}
	}
	return best
}

// startError says which flag a failure to start a member is about: the
// cluster package names the address or seed, this adds the flag that set it.
func (c *clusterFlags) startError(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "listen for Flight"):
		return fmt.Errorf("--flight %s: %w", c.flight, err)
	case strings.Contains(msg, "listen for gossip"), strings.Contains(msg, "join cluster: bind"):
		return fmt.Errorf("--bind %s: %w", c.bind, err)
	case strings.Contains(msg, "join cluster: advertise"):
		return fmt.Errorf("--advertise %s: %w", c.advertise, err)
	case strings.Contains(msg, "join seeds"):
		return fmt.Errorf("--%s %s: %w", c.joinFlag, c.join, err)
	}
	return err
}

// newLogger is the CLI's log: slog text on w, at level ("debug", "info",
// "warn", "error").
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(&memberlistLevels{h: slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})}), nil
}

// memberlistLevels gives some of memberlist's own lines their level back.
// Package cluster logs them all at debug, with memberlist's level as the
// attribute memberlist_level, because memberlist is chatty at ERR about
// peers that simply left; but its INFO and WARN lines are the membership
// events an operator wants (a member suspected, declared failed, refuted),
// and an ERR about a message no key decrypts is someone gossiping with
// another key.
type memberlistLevels struct{ h slog.Handler }

func (m *memberlistLevels) Enabled(context.Context, slog.Level) bool { return true }

func (m *memberlistLevels) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key != "memberlist_level" {
				return true
			}
			switch v := a.Value.String(); {
			case v == "INFO":
				r.Level = slog.LevelInfo
			case v == "WARN":
				r.Level = slog.LevelWarn
			case v == "ERR" && strings.Contains(r.Message, "decrypt"):
				r.Level = slog.LevelWarn
			}
			return false
		})
	}
	if !m.h.Enabled(ctx, r.Level) {
		return nil
	}
	return m.h.Handle(ctx, r)
}

func (m *memberlistLevels) WithAttrs(as []slog.Attr) slog.Handler {
	return &memberlistLevels{h: m.h.WithAttrs(as)}
}

func (m *memberlistLevels) WithGroup(name string) slog.Handler {
	return &memberlistLevels{h: m.h.WithGroup(name)}
}
