package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	pqsink "github.com/sluicedata/sluice/sinks/parquet"
)

// TPC-H constants (spec 4.2.2.12, 4.2.3). Dates are Arrow date32 days.
var (
	startDate   = days(1992, 1, 1)
	endDate     = days(1998, 12, 31)
	currentDate = days(1995, 6, 17)
	// Orders are dated up to ENDDATE - 151 days (1998-08-02), so every line
	// ships, commits and is received by ENDDATE.
	lastOrderDate = endDate - 151

	instructions = []string{"DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"}
	modes        = []string{"REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"}
	// commentWords stand in for dbgen's text grammar: l_comment only needs a
	// realistic length (10..43) and a dictionary-unfriendly spread of values.
	commentWords = []string{
		"furiously", "sly", "careful", "blithely", "quickly", "fluffily", "slyly", "ironic",
		"final", "regular", "express", "special", "pending", "bold", "even", "silent",
		"packages", "requests", "accounts", "deposits", "foxes", "ideas", "theodolites", "pinto",
		"beans", "instructions", "dependencies", "excuses", "platelets", "asymptotes", "courts", "dolphins",
		"sleep", "wake", "are", "cajole", "haggle", "nag", "use", "boost",
		"affix", "detect", "integrate", "maintain", "nod", "was", "lose", "sublate",
		"about", "above", "according", "to", "across", "after", "against", "along",
		"among", "around", "at", "atop", "before", "behind", "beneath", "beside",
	}
)

func days(y int, m time.Month, d int) int32 {
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// genConfig fixes everything the generated files depend on; the marker file
// records it so a data directory is reused only for the same data.
type genConfig struct {
	SF            float64 `json:"sf"`
	Seed          uint64  `json:"seed"`
	OrdersPerFile int64   `json:"orders_per_file"`
	RowGroupRows  int64   `json:"row_group_rows"`
}

// Defaults: ~1 M lineitem rows per file (250,000 orders * 4 lines on
// average stays under the 1<<20-row split size of sources/parquet, so one
// file is one split), row groups of 256 Ki rows.
const (
	defaultSeed          = 0x5EED_7C_4B
	defaultOrdersPerFile = 250_000
	defaultRowGroupRows  = 1 << 18
	genBatchRows         = 1 << 16
	markerName           = "_sluice_tpch_lineitem.json"
	markerFormat         = 1
)

// marker is written last, after every file is complete and fsynced: its
// presence with the same genConfig means the directory is complete.
type marker struct {
	Format int       `json:"format"`
	Config genConfig `json:"config"`
	Rows   int64     `json:"rows"`
	Files  []string  `json:"files"` // relative to the data directory
}

func (c genConfig) orders() int64 { return max(1, int64(math.Round(1_500_000*c.SF))) }
func (c genConfig) parts() int64  { return max(1, int64(math.Round(200_000*c.SF))) }
func (c genConfig) supps() int64  { return max(1, int64(math.Round(10_000*c.SF))) }
func (c genConfig) files() int64 {
	return (c.orders() + c.OrdersPerFile - 1) / c.OrdersPerFile
}

var lineitemSchema = arrow.NewSchema([]arrow.Field{
	{Name: "l_orderkey", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_partkey", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_suppkey", Type: arrow.PrimitiveTypes.Int64},
	{Name: "l_linenumber", Type: arrow.PrimitiveTypes.Int32},
	{Name: "l_quantity", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_extendedprice", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_discount", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_tax", Type: arrow.PrimitiveTypes.Float64},
	{Name: "l_returnflag", Type: arrow.BinaryTypes.String},
	{Name: "l_linestatus", Type: arrow.BinaryTypes.String},
	{Name: "l_shipdate", Type: arrow.FixedWidthTypes.Date32},
	{Name: "l_commitdate", Type: arrow.FixedWidthTypes.Date32},
	{Name: "l_receiptdate", Type: arrow.FixedWidthTypes.Date32},
	{Name: "l_shipinstruct", Type: arrow.BinaryTypes.String},
	{Name: "l_shipmode", Type: arrow.BinaryTypes.String},
	{Name: "l_comment", Type: arrow.BinaryTypes.String},
}, nil)

// splitmix64 is the finalizer of the SplitMix64 generator: a bijective mix
// of a 64-bit state, good enough to seed and drive per-row streams.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rng is a SplitMix64 stream. Every order and every line gets its own
// stream seeded from (seed, key), so any range of orders is generated
// independently of the others: generation is parallel and deterministic.
type rng struct{ s uint64 }

func newRNG(seed, key uint64) rng { return rng{s: splitmix64(seed ^ splitmix64(key))} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// between is uniform in [lo, hi]; the modulo bias (< 2^-50) does not matter here.
func (r *rng) between(lo, hi int64) int64 { return lo + int64(r.next()%uint64(hi-lo+1)) }

// orderKey spreads order keys as dbgen does: 8 keys used out of every 32.
func orderKey(i int64) int64 { return (i/8)*32 + i%8 + 1 }

// retailCents is P_RETAILPRICE (spec 4.2.3) in cents.
func retailCents(partkey int64) int64 {
	return 90000 + (partkey/10)%20001 + 100*(partkey%1000)
}

// lineitemRow is one generated row; strings point into static tables or,
// for the comment, into the caller's scratch buffer.
type lineitemRow struct {
	orderKey, partKey, suppKey             int64
	lineNumber                             int32
	quantity, extendedPrice, discount, tax float64
	returnFlag, lineStatus                 string
	shipDate, commitDate, receiptDate      int32
	shipInstruct, shipMode                 string
	comment                                []byte
}

// genOrder calls emit for each line of order i (0-based order index).
// comment is scratch space reused between lines.
func genOrder(c genConfig, i int64, comment []byte, emit func(*lineitemRow)) []byte {
	o := newRNG(c.Seed, uint64(i)<<1)
	lines := o.between(1, 7)
	orderDate := int32(o.between(int64(startDate), int64(lastOrderDate)))
	key := orderKey(i)
	parts, supps := c.parts(), c.supps()
	var row lineitemRow
	for ln := int64(1); ln <= lines; ln++ {
		r := newRNG(c.Seed, uint64(key)<<3|uint64(ln)|1<<63)
		row.orderKey = key
		row.lineNumber = int32(ln)
		row.partKey = r.between(1, parts)
		// L_SUPPKEY: one of the part's four suppliers (spec 4.2.3, PS_SUPPKEY).
		s := r.between(0, 3)
		row.suppKey = (row.partKey+s*(supps/4+(row.partKey-1)/supps))%supps + 1
		qty := r.between(1, 50)
		row.quantity = float64(qty)
		row.extendedPrice = float64(qty*retailCents(row.partKey)) / 100
		row.discount = float64(r.between(0, 10)) / 100
		row.tax = float64(r.between(0, 8)) / 100
		row.shipDate = orderDate + int32(r.between(1, 121))
		row.commitDate = orderDate + int32(r.between(30, 90))
		row.receiptDate = row.shipDate + int32(r.between(1, 30))
		row.returnFlag = "N"
		if row.receiptDate <= currentDate {
			row.returnFlag = "R"
			if r.next()&1 == 1 {
				row.returnFlag = "A"
			}
		}
		row.lineStatus = "F"
		if row.shipDate > currentDate {
			row.lineStatus = "O"
		}
		row.shipInstruct = instructions[r.between(0, int64(len(instructions)-1))]
		row.shipMode = modes[r.between(0, int64(len(modes)-1))]
		n := int(r.between(10, 43))
		comment = comment[:0]
		for len(comment) < n {
			if len(comment) > 0 {
				comment = append(comment, ' ')
			}
			comment = append(comment, commentWords[r.between(0, int64(len(commentWords)-1))]...)
		}
		row.comment = comment[:n]
		emit(&row)
	}
	return comment
}

// lineitemBuilder accumulates generated rows as one Arrow record.
type lineitemBuilder struct {
	b *array.RecordBuilder

	orderKey, partKey, suppKey                      *array.Int64Builder
	lineNumber                                      *array.Int32Builder
	quantity, price, discount, tax                  *array.Float64Builder
	returnFlag, lineStatus, instruct, mode, comment *array.StringBuilder
	shipDate, commitDate, receiptDate               *array.Date32Builder
}

func newLineitemBuilder(mem memory.Allocator) *lineitemBuilder {
	b := array.NewRecordBuilder(mem, lineitemSchema)
	return &lineitemBuilder{
		b:           b,
		orderKey:    b.Field(0).(*array.Int64Builder),
		partKey:     b.Field(1).(*array.Int64Builder),
		suppKey:     b.Field(2).(*array.Int64Builder),
		lineNumber:  b.Field(3).(*array.Int32Builder),
		quantity:    b.Field(4).(*array.Float64Builder),
		price:       b.Field(5).(*array.Float64Builder),
		discount:    b.Field(6).(*array.Float64Builder),
		tax:         b.Field(7).(*array.Float64Builder),
		returnFlag:  b.Field(8).(*array.StringBuilder),
		lineStatus:  b.Field(9).(*array.StringBuilder),
		shipDate:    b.Field(10).(*array.Date32Builder),
		commitDate:  b.Field(11).(*array.Date32Builder),
		receiptDate: b.Field(12).(*array.Date32Builder),
		instruct:    b.Field(13).(*array.StringBuilder),
		mode:        b.Field(14).(*array.StringBuilder),
		comment:     b.Field(15).(*array.StringBuilder),
	}
}

func (lb *lineitemBuilder) append(r *lineitemRow) {
	lb.orderKey.Append(r.orderKey)
	lb.partKey.Append(r.partKey)
	lb.suppKey.Append(r.suppKey)
	lb.lineNumber.Append(r.lineNumber)
	lb.quantity.Append(r.quantity)
	lb.price.Append(r.extendedPrice)
	lb.discount.Append(r.discount)
	lb.tax.Append(r.tax)
	lb.returnFlag.Append(r.returnFlag)
	lb.lineStatus.Append(r.lineStatus)
	lb.shipDate.Append(arrow.Date32(r.shipDate))
	lb.commitDate.Append(arrow.Date32(r.commitDate))
	lb.receiptDate.Append(arrow.Date32(r.receiptDate))
	lb.instruct.Append(r.shipInstruct)
	lb.mode.Append(r.shipMode)
	lb.comment.BinaryBuilder.Append(r.comment)
}

// genRecords generates orders [lo, hi) as records of about genBatchRows
// rows (never splitting an order), calling emit for each; emit does not
// own the record (it is released after emit returns).
func genRecords(c genConfig, mem memory.Allocator, lo, hi int64, emit func(arrow.Record) error) (rows int64, err error) {
	lb := newLineitemBuilder(mem)
	defer lb.b.Release()
	n := 0
	flush := func() error {
		rec := lb.b.NewRecord()
		defer rec.Release()
		rows += rec.NumRows()
		n = 0
		return emit(rec)
	}
	var comment []byte
	add := func(r *lineitemRow) { lb.append(r); n++ }
	for i := lo; i < hi; i++ {
		comment = genOrder(c, i, comment, add)
		if n >= genBatchRows-7 {
			if err := flush(); err != nil {
				return rows, err
			}
		}
	}
	if n > 0 {
		if err := flush(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// readMarker returns the marker of dir if it exists, matches c and every
// file it lists is present; otherwise nil.
func readMarker(dir string, c genConfig) *marker {
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if err != nil {
		return nil
	}
	var m marker
	if json.Unmarshal(b, &m) != nil || m.Format != markerFormat || m.Config != c || len(m.Files) == 0 {
		return nil
	}
	for _, f := range m.Files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			return nil
		}
	}
	return &m
}

// filePrefix names generated files "lineitem-<file>-00000.parquet" (the
// sink's FileWriter appends "-<n>.parquet").
func filePrefix(i int64) string { return fmt.Sprintf("lineitem-%04d", i) }

// generate writes the lineitem table for c into dir, one FileWriter per
// file, files in parallel (parallelism goroutines), then the marker. Files
// of an earlier, incomplete generation are removed first.
func generate(ctx context.Context, dir string, c genConfig, parallelism int) (*marker, error) {
	if c.SF <= 0 || c.OrdersPerFile <= 0 || c.RowGroupRows <= 0 {
		return nil, fmt.Errorf("generate: invalid config %+v", c)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	os.Remove(filepath.Join(dir, markerName))
	old, _ := filepath.Glob(filepath.Join(dir, "lineitem-*.parquet"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return nil, fmt.Errorf("generate: remove stale %s: %w", f, err)
		}
	}
	if parallelism <= 0 {
		parallelism = runtime.GOMAXPROCS(0)
	}
	nfiles := c.files()
	type result struct {
		rows  int64
		files []string
		err   error
	}
	results := make([]result, nfiles)
	var wg sync.WaitGroup
	next := make(chan int64)
	for range parallelism {
		wg.Go(func() {
			for f := range next {
				lo := f * c.OrdersPerFile
				hi := min(lo+c.OrdersPerFile, c.orders())
				results[f].rows, results[f].files, results[f].err = generateFile(ctx, dir, c, f, lo, hi)
			}
		})
	}
	for f := range nfiles {
		next <- f
	}
	close(next)
	wg.Wait()
	m := &marker{Format: markerFormat, Config: c}
	var errs []error
	for _, r := range results {
		m.Rows += r.rows
		m.Files = append(m.Files, r.files...)
		errs = append(errs, r.err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := writeMarker(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}

func generateFile(ctx context.Context, dir string, c genConfig, f, lo, hi int64) (int64, []string, error) {
	mem := memory.DefaultAllocator
	w, err := pqsink.NewFileWriter(mem, dir, filePrefix(f), lineitemSchema, pqsink.Options{
		Compression:     "zstd",
		RowGroupRows:    c.RowGroupRows,
		TargetFileBytes: 1 << 40, // one file per range of orders: the file count is the config's
	})
	if err != nil {
		return 0, nil, fmt.Errorf("generate file %d: %w", f, err)
	}
	rows, err := genRecords(c, mem, lo, hi, func(rec arrow.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.Write(rec)
	})
	if err != nil {
		w.Abort()
		return 0, nil, fmt.Errorf("generate file %d: %w", f, err)
	}
	written, err := w.Close()
	if err != nil {
		w.Abort()
		return 0, nil, fmt.Errorf("generate file %d: %w", f, err)
	}
	names := make([]string, len(written))
	for i, wf := range written {
		names[i] = wf.Path
	}
	return rows, names, nil
}

// writeMarker writes the marker durably: temp file, fsync, rename.
func writeMarker(dir string, m *marker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+markerName+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, markerName))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write marker: %w", err)
	}
	return nil
}

// paths is the marker's files joined to dir.
func (m *marker) paths(dir string) []string {
	out := make([]string, len(m.Files))
	for i, f := range m.Files {
		out[i] = filepath.Join(dir, f)
	}
	return out
}
