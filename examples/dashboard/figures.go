package main

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/sluicedata/sluice/dataset"
)

// The dashboard's three streaming queries, each a function of the order
// events (the Kafka source's columns: EventSchema's plus offset...). Every
// figure carries max(offset), the last Kafka offset its rows include, so a
// reader can tell which events a figure counts (the topic has one partition
// and is read in order).

// OrdersPerMinute is orders placed and paid per event-time minute. Run in
// update mode: each batch emits the minutes it changed, the current one
// included, and the board upserts them.
func OrdersPerMinute(events *dataset.Dataset) *dataset.Dataset {
	return events.
		WithWatermark("ts", 10*time.Second).
		GroupBy(dataset.Window("ts", time.Minute)).
		Agg(
			dataset.Count(is(StatusPlaced)).As("orders"),
			dataset.Count(is(StatusPaid)).As("paid"),
			dataset.Max(dataset.Col("offset")).As("offset"),
		)
}

// RevenueByRegion is the amount of paid orders per region since the job
// started. Run in complete mode: each batch emits every region.
func RevenueByRegion(events *dataset.Dataset) *dataset.Dataset {
	return events.
		Filter(dataset.Col("status").Eq(StatusPaid)).
		GroupBy("region").
		Agg(
			dataset.Sum(dataset.Col("amount")).As("revenue"),
			dataset.CountAll().As("paid"),
			dataset.Max(dataset.Col("offset")).As("offset"),
		)
}

// Conversion is orders paid over orders placed since the job started (a
// payment counts when its event arrives, so an order placed a minute ago
// may still convert). Run in complete mode: one row.
func Conversion(events *dataset.Dataset) *dataset.Dataset {
	return events.
		Agg(
			dataset.Count(is(StatusPlaced)).As("placed"),
			dataset.Count(is(StatusPaid)).As("paid"),
			dataset.Max(dataset.Col("offset")).As("offset"),
		).
		WithColumn("rate", dataset.Col("paid").Cast(dataset.Type(arrow.PrimitiveTypes.Float64)).Div(dataset.Col("placed")))
}

// is is 1 for events of status, null otherwise: Count(is(s)) counts them.
func is(status string) *dataset.Expr {
	return dataset.When(dataset.Col("status").Eq(status), 1).End()
}

// Rows of the queries, as the ForeachBatch functions collect them.
type (
	MinuteRow struct {
		Start  time.Time `json:"start" sluice:"window_start"`
		Orders int64     `json:"orders"`
		Paid   int64     `json:"paid"`
		Offset int64     `json:"offset"`
	}
	RegionRow struct {
		Region  string `json:"region"`
		Revenue string `json:"revenue"` // exact decimal, e.g. "1234.50"
		Paid    int64  `json:"paid"`
		Offset  int64  `json:"offset"`
	}
	ConversionRow struct {
		Placed int64   `json:"placed"`
		Paid   int64   `json:"paid"`
		Rate   float64 `json:"rate"`
		Offset int64   `json:"offset"`
	}
)

// Figure says which batch of its query a figure comes from and the last
// Kafka offset its rows include (-1: none yet).
type Figure struct {
	Batch  int64 `json:"batch"`
	Offset int64 `json:"offset"`
}

func (f *Figure) saw(batch, offset int64) {
	f.Batch, f.Offset = batch, max(f.Offset, offset)
}

// Minutes shown: the newest and the ones before it.
const shownMinutes = 10

// Board keeps the queries' latest rows: ForeachBatch functions write it
// (from three query goroutines), the server reads it every second.
type Board struct {
	mu      sync.Mutex
	version int64 // bumped by every batch applied
	minutes map[time.Time]MinuteRow
	minFig  Figure
	regions []RegionRow
	regFig  Figure
	conv    ConversionRow
	convFig Figure
}

func NewBoard() *Board {
	return &Board{minutes: map[time.Time]MinuteRow{},
		minFig: Figure{Batch: -1, Offset: -1}, regFig: Figure{Batch: -1, Offset: -1}, convFig: Figure{Batch: -1, Offset: -1}}
}

// Minutes is OrdersPerMinute's ForeachBatch function: update mode, so
// the batch's minutes replace the board's rows of the same minutes.
func (b *Board) Minutes(ctx context.Context, batch int64, ds *dataset.Dataset) error {
	rows, err := dataset.CollectStructs[MinuteRow](ctx, ds)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range rows {
		b.minutes[r.Start] = r
		b.minFig.saw(batch, r.Offset)
	}
	// Forget minutes too old to show; they are final anyway once the
	// watermark passed them.
	var newest time.Time
	for t := range b.minutes {
		if t.After(newest) {
			newest = t
		}
	}
	for t := range b.minutes {
		if t.Before(newest.Add(-(shownMinutes - 1) * time.Minute)) {
			delete(b.minutes, t)
		}
	}
	b.minFig.Batch = batch // also when the batch changed no minute
	b.version++
	return nil
}

// Regions is RevenueByRegion's ForeachBatch function: complete mode, so
// the batch's rows are the whole table.
func (b *Board) Regions(ctx context.Context, batch int64, ds *dataset.Dataset) error {
	rows, err := dataset.CollectStructs[RegionRow](ctx, ds)
	if err != nil {
		return err
	}
	slices.SortFunc(rows, func(x, y RegionRow) int { return cmp.Compare(x.Region, y.Region) })
	b.mu.Lock()
	defer b.mu.Unlock()
	b.regions = rows
	b.regFig = Figure{Batch: batch, Offset: -1}
	for _, r := range rows {
		b.regFig.saw(batch, r.Offset)
	}
	b.version++
	return nil
}

// Conversion is Conversion's ForeachBatch function: complete mode, one row.
func (b *Board) Conversion(ctx context.Context, batch int64, ds *dataset.Dataset) error {
	rows, err := dataset.CollectStructs[ConversionRow](ctx, ds)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range rows {
		b.conv = r
		b.convFig = Figure{Batch: batch, Offset: r.Offset}
	}
	b.version++
	return nil
}

// Snapshot is what the page shows, pushed as JSON.
type Snapshot struct {
	Seq   int64     `json:"seq"`   // 1, 2, ... per push
	Time  time.Time `json:"time"`  // when it was taken
	Start time.Time `json:"start"` // event time of the first order

	Minutes    []MinuteRow   `json:"minutes"` // newest first
	MinutesFig Figure        `json:"minutes_figure"`
	Regions    []RegionRow   `json:"regions"` // by name
	RegionsFig Figure        `json:"regions_figure"`
	Conversion ConversionRow `json:"conversion"`
	ConvFig    Figure        `json:"conversion_figure"`
}

// snapshot copies the board and its version.
func (b *Board) snapshot() (Snapshot, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Snapshot{MinutesFig: b.minFig, Regions: slices.Clone(b.regions), RegionsFig: b.regFig,
		Conversion: b.conv, ConvFig: b.convFig, Minutes: []MinuteRow{}}
	for _, r := range b.minutes {
		s.Minutes = append(s.Minutes, r)
	}
	slices.SortFunc(s.Minutes, func(x, y MinuteRow) int { return y.Start.Compare(x.Start) })
	if s.Regions == nil {
		s.Regions = []RegionRow{}
	}
	return s, b.version
}
