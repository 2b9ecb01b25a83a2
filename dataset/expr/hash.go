package expr

import (
	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/internal/rowhash"
)

// hash evaluates OpHash: int64(rowhash.Columns(args)), the very hash that
// shuffle exchanges and key groups route rows by (exec.HashColumns), so
// hash(k) % n names the partition a row with key k goes to. The recipe is
// a wire contract, written out in package rowhash and pinned by a golden
// test over every accepted type; in short: per argument 0x00 for null,
// else 0x01 and the value's canonical bytes (integers and temporals widened
// to int64 LE in their own unit, unsigned to uint64 LE, floats as float64
// bits with -0 as 0 and one NaN, bool 1 byte, decimal128 unscaled low then
// high, strings and binary as uint32 LE length then bytes), then XXH64 seed 0.
//
// So int32 7 and int64 7 hash alike, but decimal(10,2) 1.00 and
// decimal(10,1) 1.0 do not: cast keys to one type before hashing.
func (ev *evaluator) hash(e *Expr) (val, error) {
	cols := make([]arrow.Array, 0, len(e.Args))
	defer func() {
		for _, a := range cols {
			a.Release()
		}
	}()
	for _, arg := range e.Args {
		v, err := ev.eval(arg)
		if err != nil {
			return val{}, err
		}
		a, err := ev.materialize(v)
		if err != nil {
			return val{}, err
		}
		cols = append(cols, a)
	}
	buf := allocBuf(ev.mem, ev.n*8)
	out := arrow.GetData[uint64](buf.Bytes())[:ev.n]
	if err := rowhash.Columns(cols, out); err != nil {
		buf.Release()
		return val{}, err
	}
	dt := arrow.PrimitiveTypes.Int64
	return val{arr: makeArray(dt, ev.n, nil, 0, buf), dt: dt}, nil
}

// hashable: the argument types of hash are the types the shuffle hash takes.
func hashable(t arrow.DataType) bool { return rowhash.Supports(t) }
