package nexmark

import (
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sources/generate"
)

// q5's hopping window: 10 s long, one starting every 2 s.
const (
	q5Size  = 10 * time.Second
	q5Slide = 2 * time.Second
)

// q5 finds the hot items: in every 10 s window sliding by 2 s, the auctions
// with the most bids, ties kept (Nexmark's "hot items"). Flink's SQL:
//
//	SELECT AuctionBids.auction, AuctionBids.num
//	FROM (
//	  SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
//	  FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
//	  GROUP BY auction, window_start, window_end
//	) AS AuctionBids
//	JOIN (
//	  SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
//	  FROM (
//	    SELECT count(*) AS num, window_start AS starttime, window_end AS endtime
//	    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
//	    GROUP BY auction, window_start, window_end
//	  ) AS CountBids
//	  GROUP BY CountBids.starttime, CountBids.endtime
//	) AS MaxBids
//	ON AuctionBids.starttime = MaxBids.starttime AND
//	   AuctionBids.endtime = MaxBids.endtime AND
//	   AuctionBids.num >= MaxBids.maxn
//
// In sluice the SQL maps one to one: the bids per auction and sliding
// window (counts), the largest count per window (maxes: an aggregate of an
// aggregate), and counts joined back to maxes on the window with num >=
// maxn, all in append mode with the watermark dateTime - 4 s. A window's
// counts are emitted once, when the watermark passes its end; maxes, grouped
// by that end (an event time), closes the window in the same batch; and the
// join on equal window ends meets both in that batch, so its state holds
// only the windows of one batch. The plan is a tree, so the counts are
// planned once per side of the join, but the copies are equal: they are
// one operator with one state (agg-0), whose output both read, and the
// bids are read, windowed and partly counted once. The bids are narrowed to auction
// and dateTime before the window: sluice's optimiser does not prune columns
// below a Window, which copies each row into its five windows (with url and
// extra, q5 took 15% more CPU). The stream emits the rows of the windows
// that end at or before its final watermark.
func q5(s Streams) *dataset.Dataset {
	return q5Windowed(s).Select("auction", "num")
}

// q5Windowed is q5 with each row's window; the test keeps the batch rows of
// the windows the stream closed.
func q5Windowed(s Streams) *dataset.Dataset {
	counts := s.Bid.Select("auction", "dateTime").WithWatermark("dateTime", generate.NexmarkWatermarkDelay).
		GroupBy(dataset.SlidingWindow("dateTime", q5Size, q5Slide), "auction").
		Agg(dataset.CountAll().As("num"))
	maxes := counts.GroupBy(dataset.WindowStart, dataset.WindowEnd).
		Agg(dataset.Max(dataset.Col("num")).As("maxn"))
	return counts.JoinWhere(maxes, []string{dataset.WindowStart, dataset.WindowEnd}, dataset.Inner,
		dataset.Col("num").Ge(dataset.Col("maxn")))
}
