package exec

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Merge folds partial states into partial states, as a streaming query does
// with its stored state and each batch's partials: partial per split, merged
// two at a time in split order, then Final, equals Complete.
func TestHashAggMergeOfPartialsEqualsComplete(t *testing.T) {
	for _, keys := range [][]string{{"str", "i8"}, nil} {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		rng := rand.New(rand.NewPCG(3, 1))
		recs := []arrow.Record{
			randRecordForTest(mem, rng, 300, 6, 15),
			randRecordForTest(mem, rng, 5, 6, 15),
			randRecordForTest(mem, rng, 500, 9, 30),
		}
		schema := recs[0].Schema()
		aggs := allAggsForTest()
		want := refAggForTest(recs, keys, aggs)
		pschema, err := PartialSchema(schema, colsForTest(keys...), aggs)
		if err != nil {
			t.Fatal(err)
		}
		var state []arrow.Record
		for _, r := range recs {
			p := runAggForTest(t, mem, schema, []arrow.Record{r}, colsForTest(keys...), aggs, AggPartial)
			merged := runAggForTest(t, mem, pschema, append(append([]arrow.Record{}, state...), p...), colsForTest(keys...), aggs, AggMerge)
			for _, m := range merged {
				if !m.Schema().Equal(pschema) {
					t.Fatalf("merge schema %s, want the partial schema %s", m.Schema(), pschema)
				}
			}
			releaseRecs(state)
			releaseRecs(p)
			state = merged
		}
		final := runAggForTest(t, mem, pschema, state, colsForTest(keys...), aggs, AggFinal)
		compareAggForTest(t, resultsForTest(t, final, len(keys)), want, aggs, false)
		releaseRecs(final)
		releaseRecs(state)
		releaseRecs(recs)
		mem.AssertSize(t, 0)
	}
}

func TestKeyGroupRangesCoverEveryKeyGroupOnce(t *testing.T) {
	for _, kg := range []int{128, 7, 1} {
		for n := 1; n <= kg && n <= 9; n++ {
			for g := 0; g < kg; g++ {
				p := g * n / kg
				if g < KeyGroupLo(p, n, kg) || g >= KeyGroupLo(p+1, n, kg) {
					t.Fatalf("kg %d n %d: key group %d routed to %d, outside [%d, %d)", kg, n, g, p, KeyGroupLo(p, n, kg), KeyGroupLo(p+1, n, kg))
				}
			}
			if KeyGroupLo(0, n, kg) != 0 || KeyGroupLo(n, n, kg) != kg {
				t.Fatalf("kg %d n %d: ranges do not span [0, %d)", kg, n, kg)
			}
		}
	}
}
