package jobcli

import (
	"context"
	"io"
	"log/slog"
	"strings"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	return l, l.UnmarshalText([]byte(s))
}

// newLogger is the job's log on w: slog text or JSON at level.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	l, _ := parseLevel(level) // validated with the settings
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&memberlistLevels{h: h})
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
