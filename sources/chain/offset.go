package chain

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sluicedata/sluice/sources"
)

// Phases of a chain offset.
const (
	PhaseHistory = "history"
	PhaseLive    = "live"
)

// offset is a decoded chain offset. H is the history's offset (in the live
// phase: the history's final end, the handoff); L the live stream's.
type offset struct {
	Phase string
	H, L  sources.Offset
}

// encode writes {"phase":"history","h":H} or {"phase":"live","h":H,"l":L};
// inner offsets are compact, so equal positions have equal bytes.
func encode(o offset) sources.Offset {
	var b bytes.Buffer
	b.WriteString(`{"phase":"`)
	b.WriteString(o.Phase)
	b.WriteString(`","h":`)
	b.Write(o.H)
	if o.Phase == PhaseLive {
		b.WriteString(`,"l":`)
		b.Write(o.L)
	}
	b.WriteByte('}')
	return sources.Offset(b.Bytes())
}

func (c *Chain) parse(off sources.Offset) (offset, error) {
	var raw struct {
		Phase string          `json:"phase"`
		H     json.RawMessage `json:"h"`
		L     json.RawMessage `json:"l"`
	}
	bad := func(why string) error {
		return fmt.Errorf("chain %q: offset %q: %s: %w", c.cfg.Name, string(off), why, sources.ErrBadOffset)
	}
	d := json.NewDecoder(bytes.NewReader(off))
	d.DisallowUnknownFields()
	if err := d.Decode(&raw); err != nil {
		return offset{}, bad(err.Error())
	}
	if d.More() {
		return offset{}, bad("trailing data")
	}
	compact := func(m json.RawMessage) sources.Offset {
		if len(m) == 0 || bytes.Equal(m, []byte("null")) {
			return nil
		}
		var b bytes.Buffer
		if json.Compact(&b, m) != nil {
			return nil
		}
		return sources.Offset(b.Bytes())
	}
	o := offset{Phase: raw.Phase, H: compact(raw.H), L: compact(raw.L)}
	switch {
	case o.Phase != PhaseHistory && o.Phase != PhaseLive:
		return offset{}, bad(`want "phase" "history" or "live"`)
	case o.H == nil:
		return offset{}, bad(`want the history offset "h"`)
	case o.Phase == PhaseLive && o.L == nil:
		return offset{}, bad(`a live offset needs the live stream's offset "l"`)
	case o.Phase == PhaseHistory && o.L != nil:
		return offset{}, bad(`a history offset has no "l"`)
	}
	return o, nil
}
