package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// Tee writes every batch to several sinks. Commit commits them in order;
// each is idempotent per batch id, so a crash between two commits re-runs
// the batch and the ones already committed ignore it.
func Tee(sinks ...Sink) Sink { return tee(sinks) }

type tee []Sink

var (
	_ Sink      = tee(nil)
	_ InProcess = tee(nil)
)

// InProcess is the reasons of the sinks that work in one process, "" when
// none does.
func (t tee) InProcess() string {
	var why []string
	for _, s := range t {
		if ip, ok := s.(InProcess); ok {
			if r := ip.InProcess(); r != "" {
				why = append(why, s.Name()+": "+r)
			}
		}
	}
	return strings.Join(why, "; ")
}

func (t tee) Name() string {
	names := make([]string, len(t))
	for i, s := range t {
		names[i] = s.Name()
	}
	return "tee(" + strings.Join(names, ", ") + ")"
}

func (t tee) Check(mode Mode, schema *arrow.Schema) error {
	for _, s := range t {
		if err := s.Check(mode, schema); err != nil {
			return fmt.Errorf("%s: %w", s.Name(), err)
		}
	}
	return nil
}

func (t tee) NewWriter(ctx context.Context, b Batch, task int) (Writer, error) {
	ws := make(teeWriter, 0, len(t))
	for _, s := range t {
		w, err := s.NewWriter(ctx, b, task)
		if err != nil {
			ws.Abort()
			return nil, fmt.Errorf("%s: %w", s.Name(), err)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// split turns the tasks' messages into each sink's messages.
func (t tee) split(msgs []CommitMessage) ([][]CommitMessage, error) {
	per := make([][]CommitMessage, len(t))
	for _, m := range msgs {
		var parts []json.RawMessage
		if err := json.Unmarshal(m, &parts); err != nil || len(parts) != len(t) {
			return nil, fmt.Errorf("tee: commit message %.80s is not one message per sink", m)
		}
		for i, p := range parts {
			per[i] = append(per[i], CommitMessage(p))
		}
	}
	return per, nil
}

func (t tee) Commit(ctx context.Context, b Batch, msgs []CommitMessage) error {
	per, err := t.split(msgs)
	if err != nil {
		return err
	}
	for i, s := range t {
		if err := s.Commit(ctx, b, per[i]); err != nil {
			return fmt.Errorf("%s: %w", s.Name(), err)
		}
	}
	return nil
}

func (t tee) Abort(ctx context.Context, b Batch, msgs []CommitMessage) error {
	per, err := t.split(msgs)
	if err != nil {
		return err
	}
	var errs []error
	for i, s := range t {
		errs = append(errs, s.Abort(ctx, b, per[i]))
	}
	return errors.Join(errs...)
}

type teeWriter []Writer

var _ BadRecordCounter = teeWriter(nil)

// DeadLettered sums the rows the tee's writers dead-lettered.
func (w teeWriter) DeadLettered() int64 {
	var n int64
	for _, x := range w {
		if bc, ok := x.(BadRecordCounter); ok {
			n += bc.DeadLettered()
		}
	}
	return n
}

func (w teeWriter) Write(rec arrow.Record) error {
	for _, x := range w {
		if err := x.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

func (w teeWriter) Prepare() (CommitMessage, error) {
	parts := make([]json.RawMessage, len(w))
	for i, x := range w {
		m, err := x.Prepare()
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			m = CommitMessage("null")
		}
		parts[i] = json.RawMessage(m)
	}
	return json.Marshal(parts)
}

func (w teeWriter) Abort() error {
	var errs []error
	for _, x := range w {
		errs = append(errs, x.Abort())
	}
	return errors.Join(errs...)
}
