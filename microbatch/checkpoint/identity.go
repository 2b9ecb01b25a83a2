package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// Identity is whose a checkpoint is: the facts its state and offsets mean
// something under. Two queries with equal identities may share a
// checkpoint; any difference means the state or the offsets would be read
// as something they are not. It is built from typed facts only (never
// EXPLAIN text), so a cosmetic change to how a plan prints changes nothing.
type Identity struct {
	// KeyGroups is the number of key groups state is hashed into.
	KeyGroups int `json:"key_groups"`
	// Sources are the query's streams, sorted by name.
	Sources []SourceIdentity `json:"sources"`
	// Operators are the stateful operators, sorted by id.
	Operators []OperatorIdentity `json:"stateful_operators"`
}

// SourceIdentity is one stream: its name in the query (offsets are keyed
// by it) and its sources.Stream.Identity (what data its offsets count).
type SourceIdentity struct {
	Name     string `json:"name"`
	Identity string `json:"identity"`
}

// OperatorIdentity is one stateful operator's state: kind and id (its
// state directory), what the state is keyed by and what it keeps, as
// SchemaText.
type OperatorIdentity struct {
	Kind        string `json:"kind"`
	ID          string `json:"id"`
	KeySchema   string `json:"key_schema"`
	ValueSchema string `json:"value_schema"`
	// Aggregates are an aggregation's functions in output order.
	Aggregates []string `json:"aggregates,omitempty"`
	// StateType is the Go type FlatMapGroupsWithState keeps.
	StateType string `json:"state_type,omitempty"`
}

// Canonical returns id with sources sorted by name and operators by id,
// and nil lists made empty: the form that is stored, hashed and compared.
func (id Identity) Canonical() Identity {
	out := Identity{KeyGroups: id.KeyGroups,
		Sources:   append([]SourceIdentity{}, id.Sources...),
		Operators: make([]OperatorIdentity, len(id.Operators))}
	for i, op := range id.Operators {
		op.Aggregates = slices.Clone(op.Aggregates)
		out.Operators[i] = op
	}
	slices.SortFunc(out.Sources, func(a, b SourceIdentity) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(out.Operators, func(a, b OperatorIdentity) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Hash is a short fingerprint of the canonical identity: the first 16 hex
// digits of the SHA-256 of its JSON encoding. Equal identities have equal
// hashes; it is for logs, tools and cheap comparisons, never a substitute
// for Diff in an error.
func (id Identity) Hash() string {
	b, err := json.Marshal(id.Canonical())
	if err != nil {
		panic(fmt.Sprintf("checkpoint: identity does not encode: %v", err)) // plain strings and ints always do
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Diff says, one line per fact, how now differs from id (the stored
// identity): empty when they are equal.
func (id Identity) Diff(now Identity) []string {
	was, is := id.Canonical(), now.Canonical()
	var out []string
	if was.KeyGroups != is.KeyGroups {
		out = append(out, fmt.Sprintf("key groups were %d and are now %d", was.KeyGroups, is.KeyGroups))
	}
	diffByKey(was.Sources, is.Sources, func(s SourceIdentity) string { return s.Name },
		func(s SourceIdentity) {
			out = append(out, fmt.Sprintf("source %q (identity %q) is no longer read", s.Name, s.Identity))
		},
		func(s SourceIdentity) {
			out = append(out, fmt.Sprintf("source %q (identity %q) is new", s.Name, s.Identity))
		},
		func(a, b SourceIdentity) {
			if a.Identity != b.Identity {
				out = append(out, fmt.Sprintf("source %q: identity was %q and is now %q", a.Name, a.Identity, b.Identity))
			}
		})
	diffByKey(was.Operators, is.Operators, func(o OperatorIdentity) string { return o.ID },
		func(o OperatorIdentity) { out = append(out, fmt.Sprintf("operator %s (%s) is gone", o.ID, o.Kind)) },
		func(o OperatorIdentity) { out = append(out, fmt.Sprintf("operator %s (%s) is new", o.ID, o.Kind)) },
		func(a, b OperatorIdentity) {
			field := func(what, x, y string) {
				if x != y {
					out = append(out, fmt.Sprintf("operator %s: %s was %q and is now %q", a.ID, what, x, y))
				}
			}
			field("kind", a.Kind, b.Kind)
			field("key schema", a.KeySchema, b.KeySchema)
			field("value schema", a.ValueSchema, b.ValueSchema)
			field("aggregates", strings.Join(a.Aggregates, ","), strings.Join(b.Aggregates, ","))
			field("state type", a.StateType, b.StateType)
		})
	return out
}

// diffByKey walks two lists sorted by key and reports what only one has
// and the pairs both have.
func diffByKey[T any](was, is []T, key func(T) string, gone, added func(T), both func(a, b T)) {
	i, j := 0, 0
	for i < len(was) || j < len(is) {
		switch {
		case j == len(is) || i < len(was) && key(was[i]) < key(is[j]):
			gone(was[i])
			i++
		case i == len(was) || key(is[j]) < key(was[i]):
			added(is[j])
			j++
		default:
			both(was[i], is[j])
			i++
			j++
		}
	}
}

// SchemaText is the canonical text of a schema in an Identity: its fields
// in order as `name: type`, ` not null` after a field that is not
// nullable, joined by ", ". A name other than letters, digits, '_' and '.'
// is quoted (Go syntax). Nested types spell their children the same way
// (`struct<a: int64, b: utf8 not null>`, `list<item: int64>`); other types
// use Arrow's name for them (`utf8`, `timestamp[ms, tz=UTC]`,
// `decimal(12, 2)`). Metadata is not part of it. A nil schema is "".
func SchemaText(s *arrow.Schema) string {
	if s == nil {
		return ""
	}
	return fieldsText(s.Fields())
}

func fieldsText(fields []arrow.Field) string {
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(fieldText(f))
	}
	return b.String()
}

func fieldText(f arrow.Field) string {
	s := nameText(f.Name) + ": " + typeText(f.Type)
	if !f.Nullable {
		s += " not null"
	}
	return s
}

func nameText(name string) string {
	if name == "" {
		return `""`
	}
	for _, r := range name {
		if !(r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return strconv.Quote(name)
		}
	}
	return name
}

func typeText(t arrow.DataType) string {
	switch t := t.(type) {
	case *arrow.StructType:
		return "struct<" + fieldsText(t.Fields()) + ">"
	case *arrow.ListType:
		return "list<" + fieldText(t.ElemField()) + ">"
	case *arrow.LargeListType:
		return "large_list<" + fieldText(t.ElemField()) + ">"
	case *arrow.FixedSizeListType:
		return fmt.Sprintf("fixed_size_list<%d, %s>", t.Len(), fieldText(t.ElemField()))
	case *arrow.MapType:
		sorted := ""
		if t.KeysSorted {
			sorted = ", keys sorted"
		}
		return "map<" + fieldText(t.KeyField()) + ", " + fieldText(t.ItemField()) + sorted + ">"
	}
	return t.String()
}

// ownerDiff says how an offsets entry's owner (query id and source
// identities) differs from the metadata's; empty when it is the same.
func ownerDiff(e *OffsetEntry, m *Metadata) []string {
	var out []string
	if e.QueryID != m.QueryID {
		out = append(out, fmt.Sprintf("query_id is %q, metadata.json's is %q", e.QueryID, m.QueryID))
	}
	names := make([]string, 0, len(e.Sources))
	for name := range e.Sources {
		names = append(names, name)
	}
	slices.Sort(names)
	here := make([]SourceIdentity, len(names))
	for i, name := range names {
		here[i] = SourceIdentity{Name: name, Identity: e.Sources[name].Identity}
	}
	diffByKey(m.Identity.Sources, here, func(s SourceIdentity) string { return s.Name },
		func(s SourceIdentity) {
			out = append(out, fmt.Sprintf("source %q of metadata.json is missing", s.Name))
		},
		func(s SourceIdentity) {
			out = append(out, fmt.Sprintf("source %q (identity %q) is not in metadata.json", s.Name, s.Identity))
		},
		func(a, b SourceIdentity) {
			if a.Identity != b.Identity {
				out = append(out, fmt.Sprintf("source %q: identity is %q, metadata.json's is %q", a.Name, b.Identity, a.Identity))
			}
		})
	return out
}
