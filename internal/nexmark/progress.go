package nexmark

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a bar of events done of a total (rate and ETA) on a
// terminal, and nothing elsewhere: a log file or a pipe gets no control
// characters. The zero value (no bar) ignores every call.
type progress struct{ bar *progressbar.ProgressBar }

// isTerminal says whether w is a terminal; tests replace it to draw the
// bar into a buffer.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newProgress(w io.Writer, total int64, what string) progress {
	if !isTerminal(w) {
		return progress{}
	}
	return progress{progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("events"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { io.WriteString(w, "\n") }),
	)}
}

func (p progress) set(done int64) {
	if p.bar != nil {
		p.bar.Set64(done)
	}
}

func (p progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// abandon leaves the bar where it stopped, on its own line, before an
// error is printed.
func (p progress) abandon() {
	if p.bar != nil {
		p.bar.Exit()
	}
}
