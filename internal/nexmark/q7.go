package nexmark

import (
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sources/generate"
)

// q7Window is q7's tumbling window.
const q7Window = 10 * time.Second

// q7 finds the highest bids of every 10 s tumbling window, with their
// details (Nexmark's "highest bid"). Flink's SQL:
//
//	SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
//	from bid B
//	JOIN (
//	  SELECT MAX(price) AS maxprice, window_end as dateTime
//	  FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	  GROUP BY window_start, window_end
//	) B1
//	ON B.price = B1.maxprice
//	WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime
//
// In sluice the bid stream is read twice: once into a windowed max, once
// joined with it on price, with Flink's condition (both ends inclusive, so
// a bid exactly at a window's end also matches that window's max). The
// condition is a time range between the two sides' event times (dateTime -
// window_end in [-10 s, 0]), which bounds the join's state: a bid leaves it
// once the watermark (dateTime - 4 s) passes its window. In append mode the
// max of a window is emitted once, when the watermark passes the window's
// end, and joins the bids kept for it; so the stream emits the rows of the
// windows that end at or before its final watermark.
func q7(s Streams) *dataset.Dataset {
	return q7Windowed(s).Select("auction", "price", "bidder", "dateTime", "extra")
}

// q7Windowed is q7 with the end of each row's window (maxTime); the test
// keeps the batch rows of the windows the stream closed.
func q7Windowed(s Streams) *dataset.Dataset {
	bids := s.Bid.WithWatermark("dateTime", generate.NexmarkWatermarkDelay).
		Select("auction", "price", "bidder", "dateTime", "extra")
	top := bids.GroupBy(dataset.Window("dateTime", q7Window)).
		Agg(dataset.Max(dataset.Col("price")).As("price")).
		Select("price", dataset.Col(dataset.WindowEnd).As("maxTime"))
	return bids.JoinWhere(top, []string{"price"}, dataset.Inner,
		dataset.Col("dateTime").Between(
			dataset.AddDuration(dataset.Col("maxTime"), 0, -int64(q7Window)),
			dataset.Col("maxTime")))
}
