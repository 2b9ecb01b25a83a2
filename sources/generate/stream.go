package generate

// Streams. Rate and OrdersStream turn the generators into sources.Streams
// whose data is a pure function of (seed, row index), so any batch can be
// re-read on any machine after a restart.
//
// Offsets are row counts: {"rows":N} means rows 0..N-1 were handed out.
// A processing-time rate limited stream also records its time origin,
// {"rows":N,"start_us":T} (Unix microseconds): rows due and, for Rate,
// row timestamps count from T, so a restarted query (whose new source
// instance may have another StartTime, e.g. a defaulted time.Now) keeps the
// origin its checkpoint started with. A missing start_us means the
// configured StartTime.
//
// Invariants:
//  1. Row i of a stream is a pure function of (seed, i) (and, for Rate, of
//     the recorded time origin): Splits(start, end) reads the same rows
//     forever.
//  2. Latest never goes backwards: if the clock does, it returns start.
//  3. Splits hold plain data (no source, no records) and are capped at
//     SplitRows rows, so a big batch reads in parallel.
//  4. A split encodes to its row range only (Rate: and its time origin),
//     {"v":1,"kind":"rate"|"orders"|"nexmark","name":..,"split":{"from":F,
//     "to":T}}; the generator's parameters (seed, keys, rate, Nexmark
//     config) are the decoding stream's own config, which the same job
//     code builds identically in every process.
//
// Driver loop as seen from here:
//
//	start := Initial()                      // {"rows":0,"start_us":StartTime}
//	end   := Latest(start)                  // min(due(Now()), start+MaxRowsPerBatch, Total)
//	Splits(start, end)                      // [start, start+64K), [start+64K, ...), ..., end

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/sources"
)

// SplitRows is the most rows one generator split covers.
const SplitRows = 64 << 10

// ErrConfig: a stream config New cannot use.
var ErrConfig = errors.New("generate: bad config")

// streamOffset is the JSON form of a generator stream's offset.
type streamOffset struct {
	Rows    *int64 `json:"rows"`
	StartUs *int64 `json:"start_us,omitempty"`
}

// position is a parsed offset.
type position struct {
	rows    int64
	startUs int64
}

func (p position) encode(withStart bool) sources.Offset {
	b := []byte(`{"rows":`)
	b = strconv.AppendInt(b, p.rows, 10)
	if withStart {
		b = append(b, `,"start_us":`...)
		b = strconv.AppendInt(b, p.startUs, 10)
	}
	return append(b, '}')
}

// parseOffset reads off, defaulting the time origin to defStartUs.
func parseOffset(name string, off sources.Offset, defStartUs int64) (position, error) {
	var o streamOffset
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	err := d.Decode(&o)
	if err == nil {
		if _, e := d.Token(); e != io.EOF {
			err = errors.New("trailing data")
		}
	}
	if err != nil || o.Rows == nil || *o.Rows < 0 {
		return position{}, fmt.Errorf("generate %q: offset %q: want {\"rows\":N} with N >= 0: %w", name, string(off), sources.ErrBadOffset)
	}
	p := position{rows: *o.Rows, startUs: defStartUs}
	if o.StartUs != nil {
		p.startUs = *o.StartUs
	}
	return p, nil
}

// parseRange parses a batch's offsets; the end's time origin must be the start's.
func parseRange(name string, start, end sources.Offset, defStartUs int64) (position, position, error) {
	lo, err := parseOffset(name, start, defStartUs)
	if err != nil {
		return lo, lo, err
	}
	hi, err := parseOffset(name, end, defStartUs)
	if err != nil {
		return lo, hi, err
	}
	if hi.rows < lo.rows {
		return lo, hi, fmt.Errorf("generate %q: end offset %s before start %s: %w", name, end, start, sources.ErrBadOffset)
	}
	if hi.startUs != lo.startUs {
		return lo, hi, fmt.Errorf("generate %q: offsets %s and %s have different time origins: %w", name, start, end, sources.ErrBadOffset)
	}
	return lo, hi, nil
}

// rowsDue is how many rows at rowsPerSecond are due elapsed after the time
// origin: row i is due at origin + i/rowsPerSecond, counted once its time
// has passed. Computed in whole seconds plus a remainder so that neither
// product overflows for any realistic rate and age.
func rowsDue(elapsed time.Duration, rowsPerSecond int64) int64 {
	if elapsed <= 0 {
		return 0
	}
	sec := int64(elapsed / time.Second)
	rem := int64(elapsed % time.Second)
	return sec*rowsPerSecond + rem*rowsPerSecond/int64(time.Second)
}

// nextEnd caps the rows available now by the batch limit and the total;
// it never returns less than start (invariant 2).
func nextEnd(start, available, maxPerBatch, total int64) int64 {
	end := available
	if maxPerBatch > 0 && end-start > maxPerBatch {
		end = start + maxPerBatch
	}
	if total > 0 && end > total {
		end = total
	}
	return max(end, start)
}

// Source kinds in the sources split envelope.
const (
	rateKind        = "rate"
	ordersKind      = "orders"
	nexmarkKindName = "nexmark"
)

// rowRange is the encoded body of an orders or Nexmark split: everything
// else the read needs is the decoding stream's config.
type rowRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// checkRange refuses a decoded range no Splits makes: negative, reversed,
// empty, longer than SplitRows, or past a bounded stream's total.
func checkRange(kind, name string, from, to, total int64) error {
	switch {
	case from < 0 || to <= from:
		return sources.BadSplitf(kind, name, "rows [%d, %d) are not a range", from, to)
	case to-from > SplitRows:
		return sources.BadSplitf(kind, name, "rows [%d, %d) are more than the %d a split holds", from, to, SplitRows)
	case total > 0 && to > total:
		return sources.BadSplitf(kind, name, "rows [%d, %d) end past the %d rows of the stream", from, to, total)
	}
	return nil
}

// rowRanges cuts [lo, hi) into pieces of at most SplitRows.
func rowRanges(lo, hi int64, each func(from, to int64)) {
	for from := lo; from < hi; from += SplitRows {
		each(from, min(hi, from+SplitRows))
	}
}
