package nexmark

import (
	"time"

	"github.com/sluicedata/sluice/dataset"
)

// q11WatermarkDelay is the stream's declared watermark: dateTime - 4 s.
const q11WatermarkDelay = 4 * time.Second

// q11 counts each bidder's bids per session (gap 10 s).
//
//	SELECT B.bidder, count(*) AS bid_count,
//	       SESSION_START(B.dateTime, INTERVAL '10' SECOND) AS starttime,
//	       SESSION_END(B.dateTime, INTERVAL '10' SECOND) AS endtime
//	FROM bid B
//	GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND)
//
// As a stream in append mode each session is emitted once, when the
// watermark (max dateTime - 4 s) passes its end; a batch query ignores the
// watermark and returns every session.
func q11(s Streams) *dataset.Dataset {
	return s.Bid.WithWatermark("dateTime", q11WatermarkDelay).
		GroupBy(dataset.SessionWindow("dateTime", 10*time.Second), "bidder").
		Agg(dataset.CountAll().As("bid_count")).
		Select("bidder", "bid_count",
			dataset.Col(dataset.WindowStart).As("starttime"),
			dataset.Col(dataset.WindowEnd).As("endtime"))
}
