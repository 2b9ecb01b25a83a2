package expr

import (
	"bytes"
	"regexp"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/bitutil"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// strView reads a string or binary array (32- or 64-bit offsets) without
// per-row interface calls.
type strView struct {
	off32 []int32
	off64 []int64
	data  []byte
}

func strViewOf(a arrow.Array) strView {
	d := a.Data()
	bufs := d.Buffers()
	var v strView
	if len(bufs) > 2 && bufs[2] != nil {
		v.data = bufs[2].Bytes()
	}
	if d.Len() == 0 || bufs[1] == nil {
		v.off32 = []int32{0}
		return v
	}
	switch a.DataType().ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		v.off64 = arrow.GetData[int64](bufs[1].Bytes())[d.Offset() : d.Offset()+d.Len()+1]
	default:
		v.off32 = arrow.GetData[int32](bufs[1].Bytes())[d.Offset() : d.Offset()+d.Len()+1]
	}
	return v
}

func (v strView) at(i int) []byte {
	if v.off32 != nil {
		return v.data[v.off32[i]:v.off32[i+1]]
	}
	return v.data[v.off64[i]:v.off64[i+1]]
}

// strWriter accumulates string values in Go memory; finish copies them into
// allocator buffers of the requested offset width.
type strWriter struct {
	offs  []int64
	data  []byte
	valid []byte // nil while every value is valid
	n     int
}

func newStrWriter(n, dataHint int) *strWriter {
	offs := make([]int64, 1, n+1)
	return &strWriter{offs: offs, data: make([]byte, 0, dataHint), n: n}
}

func (w *strWriter) append(b []byte) {
	w.data = append(w.data, b...)
	w.offs = append(w.offs, int64(len(w.data)))
}

func (w *strWriter) appendNull() {
	i := len(w.offs) - 1
	if w.valid == nil {
		w.valid = make([]byte, bitutil.BytesForBits(int64(max(w.n, i+1))))
		bitutil.SetBitsTo(w.valid, 0, int64(len(w.valid)*8), true)
	}
	bitutil.ClearBit(w.valid, i)
	w.offs = append(w.offs, int64(len(w.data)))
}

func (w *strWriter) finish(mem memory.Allocator, dt arrow.DataType) arrow.Array {
	n := len(w.offs) - 1
	var offs *memory.Buffer
	switch dt.ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		offs = allocBuf(mem, (n+1)*8)
		copy(arrow.GetData[int64](offs.Bytes()), w.offs)
	default:
		offs = allocBuf(mem, (n+1)*4)
		o := arrow.GetData[int32](offs.Bytes())[:n+1]
		for i, x := range w.offs {
			o[i] = int32(x)
		}
	}
	data := allocBuf(mem, len(w.data))
	copy(data.Bytes(), w.data)
	var valid *memory.Buffer
	nulls := 0
	if w.valid != nil {
		valid = allocBuf(mem, int(bitutil.BytesForBits(int64(n))))
		copy(valid.Bytes(), w.valid)
		nulls = n - bitutil.CountSetBits(valid.Bytes(), 0, n)
	}
	return makeArray(dt, n, valid, nulls, offs, data)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (ev *evaluator) stringFunc(e *Expr, dt arrow.DataType) (val, error) {
	if e.Op == OpConcat {
		return ev.concat(e, dt)
	}
	v, err := ev.eval(e.Args[0])
	if err != nil {
		return val{}, err
	}
	defer v.release()
	if v.null() {
		return val{lit: &Literal{Type: Type{dt}, Null: true}, dt: dt}, nil
	}
	a, err := ev.materialize(v)
	if err != nil {
		return val{}, err
	}
	if v.scalar() {
		defer a.Release()
	}
	sv := strViewOf(a)
	vm, voff := validity(a)
	isNull := func(i int) bool { return vm != nil && !bitutil.BitIsSet(vm, voff+i) }
	intArg := func(k int) int {
		if k >= len(e.Args) {
			return -1
		}
		return int(litNum[int64](e.Args[k].Lit))
	}
	strArg := func(k int) []byte { return []byte(e.Args[k].Lit.Value.(string)) }

	switch e.Op {
	case OpLength:
		buf := allocBuf(ev.mem, ev.n*4)
		out := arrow.GetData[int32](buf.Bytes())[:ev.n]
		for i := range out {
			out[i] = int32(utf8.RuneCount(sv.at(i)))
		}
		valid, nulls := andValidity(ev.mem, ev.n, a)
		return val{arr: makeArray(dt, ev.n, valid, nulls, buf), dt: dt}, nil
	case OpContains, OpStartsWith:
		pat := strArg(1)
		buf := allocBuf(ev.mem, int(bitutil.BytesForBits(int64(ev.n))))
		bits := buf.Bytes()
		clear(bits)
		for i := 0; i < ev.n; i++ {
			var ok bool
			if e.Op == OpContains {
				ok = bytes.Contains(sv.at(i), pat)
			} else {
				ok = bytes.HasPrefix(sv.at(i), pat)
			}
			bits[i>>3] |= b2u(ok) << (i & 7)
		}
		valid, nulls := andValidity(ev.mem, ev.n, a)
		return val{arr: makeArray(dt, ev.n, valid, nulls, buf), dt: dt}, nil
	}

	w := newStrWriter(ev.n, len(sv.data))
	var re *regexp.Regexp
	var group int
	if e.Op == OpRegexpExtract {
		re, err = regexp.Compile(e.Args[1].Lit.Value.(string))
		if err != nil {
			return val{}, ev.b.errf(e, "bad regexp: %v", err)
		}
		group = intArg(2)
		if group < 0 || group > re.NumSubexp() {
			return val{}, ev.b.errf(e, "regexp group %d out of range (pattern has %d)", group, re.NumSubexp())
		}
	}
	if e.Op == OpSplitPart && intArg(2) == 0 {
		return val{}, ev.b.errf(e, "split_part index 0 is invalid (1-based)")
	}
	var scratch []byte
	var loc []int
	for i := 0; i < ev.n; i++ {
		if isNull(i) {
			w.appendNull()
			continue
		}
		s := sv.at(i)
		switch e.Op {
		case OpLower, OpUpper:
			if isASCII(s) {
				start := len(w.data)
				w.data = append(w.data, s...)
				out := w.data[start:]
				for j, c := range out {
					if e.Op == OpLower && 'A' <= c && c <= 'Z' {
						out[j] = c + 32
					} else if e.Op == OpUpper && 'a' <= c && c <= 'z' {
						out[j] = c - 32
					}
				}
				w.offs = append(w.offs, int64(len(w.data)))
			} else if e.Op == OpLower {
				w.append(bytes.ToLower(s))
			} else {
				w.append(bytes.ToUpper(s))
			}
		case OpSubstr:
			w.append(substr(s, intArg(1), intArg(2), len(e.Args) == 3))
		case OpRegexpExtract:
			loc = re.FindSubmatchIndex(s)
			if loc == nil || loc[2*group] < 0 {
				w.append(nil)
			} else {
				w.append(s[loc[2*group]:loc[2*group+1]])
			}
		case OpSplitPart:
			scratch = splitPart(s, strArg(1), intArg(2))
			w.append(scratch)
		}
	}
	return val{arr: w.finish(ev.mem, dt), dt: dt}, nil
}

// substr follows Spark's substringSQL: 1-based pos, 0 acts as 1, a negative
// pos counts from the end; positions are in runes.
func substr(s []byte, pos, length int, hasLen bool) []byte {
	if !hasLen {
		length = 1 << 40
	}
	ascii := isASCII(s)
	nchars := len(s)
	if !ascii && pos < 0 {
		nchars = utf8.RuneCount(s)
	}
	start := 0
	switch {
	case pos > 0:
		start = pos - 1
	case pos < 0:
		start = nchars + pos
	}
	end := start + length
	start = max(start, 0)
	if start >= end {
		return nil
	}
	if ascii {
		if start >= len(s) {
			return nil
		}
		return s[start:min(end, len(s))]
	}
	bs, be := -1, len(s)
	ri := 0
	for bi := range string(s) {
		if ri == start {
			bs = bi
		}
		if ri == end {
			be = bi
			break
		}
		ri++
	}
	if bs < 0 {
		return nil
	}
	return s[bs:be]
}

// splitPart returns the part-th (1-based; negative counts from the end) piece
// of s split by delim, or "" when out of range. An empty delim leaves s whole.
func splitPart(s, delim []byte, part int) []byte {
	if len(delim) == 0 {
		if part == 1 || part == -1 {
			return s
		}
		return nil
	}
	if part < 0 {
		parts := bytes.Split(s, delim)
		k := len(parts) + part
		if k < 0 {
			return nil
		}
		return parts[k]
	}
	for k := 1; ; k++ {
		j := bytes.Index(s, delim)
		if k == part {
			if j < 0 {
				return s
			}
			return s[:j]
		}
		if j < 0 {
			return nil
		}
		s = s[j+len(delim):]
	}
}

func (ev *evaluator) concat(e *Expr, dt arrow.DataType) (val, error) {
	var arrs []arrow.Array
	defer func() { releaseAll(arrs) }()
	for _, arg := range e.Args {
		v, err := ev.eval(arg)
		if err != nil {
			return val{}, err
		}
		if v.null() {
			v.release()
			return val{lit: &Literal{Type: Type{dt}, Null: true}, dt: dt}, nil
		}
		a, _ := ev.materialize(v)
		arrs = append(arrs, a)
	}
	views := make([]strView, len(arrs))
	for k, a := range arrs {
		views[k] = strViewOf(a)
	}
	valid, _ := andValidity(ev.mem, ev.n, arrs...)
	var vb []byte
	if valid != nil {
		vb = valid.Bytes()
		defer valid.Release()
	}
	w := newStrWriter(ev.n, 0)
	for i := 0; i < ev.n; i++ {
		if vb != nil && !bitutil.BitIsSet(vb, i) {
			w.appendNull()
			continue
		}
		for _, v := range views {
			w.data = append(w.data, v.at(i)...)
		}
		w.offs = append(w.offs, int64(len(w.data)))
	}
	return val{arr: w.finish(ev.mem, dt), dt: dt}, nil
}

func sizeOf[T any](z T) uintptr {
	switch any(z).(type) {
	case int8, uint8:
		return 1
	case int16, uint16:
		return 2
	case int32, uint32, float32:
		return 4
	case int64, uint64, float64:
		return 8
	}
	return 16
}
