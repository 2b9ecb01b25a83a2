package expr

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// The kernels alone, without Eval's allocation: Spark's float order
// (cmpFloat) against the IEEE loop it replaced (cmpVS, cmpVV), on 1 Mi
// values without NaN.
func BenchmarkCmpKernel(b *testing.B) {
	const n = 1 << 20
	bld := array.NewFloat64Builder(memory.NewGoAllocator())
	for i := range n {
		bld.Append(float64(i%11) / 100)
	}
	arr := bld.NewArray()
	defer arr.Release()
	col := val{arr: arr, dt: arrow.PrimitiveTypes.Float64}
	lit := val{lit: &Literal{Type: Type{arrow.PrimitiveTypes.Float64}, Value: 0.05}, dt: arrow.PrimitiveTypes.Float64}
	vals := fixedValues[float64](arr)
	other := make([]float64, n)
	for i := range other {
		other[i] = float64(i%7) / 100
	}
	otherCol := array.NewFloat64Data(array.NewData(arrow.PrimitiveTypes.Float64, n, []*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(other))}, nil, 0, 0))
	defer otherCol.Release()
	bits := make([]byte, n/8)
	run := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				clear(bits)
				f()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/value")
		})
	}
	for _, op := range []Op{OpGt, OpEq} {
		run("ieee/"+string(op)+"/literal", func() { cmpVS(op, vals, 0.05, bits) })
		run("spark/"+string(op)+"/literal", func() { cmpFloat[float64](op, col, lit, bits) })
		run("ieee/"+string(op)+"/column", func() { cmpVV(op, vals, other, bits) })
		run("spark/"+string(op)+"/column", func() {
			cmpFloat[float64](op, col, val{arr: otherCol, dt: arrow.PrimitiveTypes.Float64}, bits)
		})
	}
}
