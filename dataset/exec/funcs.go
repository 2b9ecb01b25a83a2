package exec

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

var (
	// ErrFuncRegisteredTwice: two different registrations of one function
	// name met in one plan (see Funcs).
	ErrFuncRegisteredTwice = errors.New("a function name is registered twice in one plan")
)

// Func is one registration of user code under a name: one call of
// Dataset.MapBatches or Dataset.FlatMapGroupsWithState. Its pointer is its
// identity: Go func values are not comparable, and closures of one function
// literal share their code, so nothing about the function itself can tell
// two registrations apart.
type Func struct {
	Name  string
	At    string    // where it was registered (file:line), for errors
	Batch BatchFunc // exactly one of Batch and Group is set
	Group GroupFunc
}

func (f *Func) kind() string {
	if f.Batch != nil {
		return "map_batches"
	}
	return "flatMapGroupsWithState"
}

// Funcs is the function registry of one job: the user functions its plan
// names, by name. Plans carry names only (they must be able to leave the
// process); a task finds the code through the Funcs in its environment.
// An executor in another process builds the same job from the same code,
// and so the same Funcs.
//
// Invariants:
//  1. A Funcs is immutable: With and Merge return a new one (or one of their
//     operands, unchanged), so Datasets that share a registry never see each
//     other's later registrations.
//  2. A name means exactly one registration. Adding another registration of a
//     name already present is ErrFuncRegisteredTwice; the same registration
//     met again (a Dataset unioned or joined with itself) is not a clash.
//     Batch and group functions share one namespace.
//
// The nil *Funcs is the empty registry.
type Funcs struct {
	byName map[string]*Func
}

// With returns fs plus f.
func (fs *Funcs) With(f *Func) (*Funcs, error) {
	return fs.Merge(&Funcs{byName: map[string]*Func{f.Name: f}})
}

// Merge returns the registrations of fs and o together: the registry of a
// plan that combines two plans (a union, a join).
func (fs *Funcs) Merge(o *Funcs) (*Funcs, error) {
	switch {
	case fs.len() == 0:
		return o, nil
	case o.len() == 0 || fs == o:
		return fs, nil
	}
	var out *Funcs
	for _, name := range slices.Sorted(maps.Keys(o.byName)) {
		f := o.byName[name]
		old, ok := fs.byName[name]
		if ok && old == f {
			continue
		}
		if ok {
			return nil, fmt.Errorf("%w: %q, as %s at %s and as %s at %s; give each function its own name",
				ErrFuncRegisteredTwice, name, old.kind(), old.At, f.kind(), f.At)
		}
		if out == nil {
			out = &Funcs{byName: maps.Clone(fs.byName)}
		}
		out.byName[name] = f
	}
	if out == nil {
		return fs, nil // o adds nothing fs lacks
	}
	return out, nil
}

// Batch finds the BatchFunc registered under name.
func (fs *Funcs) Batch(name string) (BatchFunc, bool) {
	if fs == nil || fs.byName[name] == nil || fs.byName[name].Batch == nil {
		return nil, false
	}
	return fs.byName[name].Batch, true
}

// Group finds the GroupFunc registered under name.
func (fs *Funcs) Group(name string) (GroupFunc, bool) {
	if fs == nil || fs.byName[name] == nil || fs.byName[name].Group == nil {
		return nil, false
	}
	return fs.byName[name].Group, true
}

// Names lists the registered names in order.
func (fs *Funcs) Names() []string {
	if fs == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(fs.byName))
}

func (fs *Funcs) len() int {
	if fs == nil {
		return 0
	}
	return len(fs.byName)
}
