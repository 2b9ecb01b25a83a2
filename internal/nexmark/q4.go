package nexmark

import (
	"math"
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sources/generate"
)

// q4 is Nexmark's "average price for a category": the average winning bid
// of the auctions of each category. Flink's SQL:
//
//	SELECT Q.category, AVG(Q.final)
//	FROM (
//	    SELECT MAX(B.price) AS final, A.category
//	    FROM auction A, bid B
//	    WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//	    GROUP BY A.id, A.category
//	) Q
//	GROUP BY Q.category
//
// In sluice Q is q4Winning (below), each auction's winning bid, emitted once
// when the watermark passes the auction's expiry; the outer average per
// category then runs in update mode: each batch emits the categories whose
// average changed. Only the last stateful operator of a query follows its
// output mode; the join and the inner aggregation feeding it emit
// append-style, so every winning bid is counted once.
func q4(s Streams) *dataset.Dataset {
	return q4Windowed(s).GroupBy("category").Agg(dataset.Avg(dataset.Col("final")).As("avg"))
}

// auctionHorizonEvents is how many events ahead the generator looks to set
// an auction's expiry (nexmark.md: 100*50/3).
const auctionHorizonEvents = 100 * 50 / 3

// maxAuctionLife is the longest an auction of a generator with this event
// rate (events per second of event time; 0 is the default 10 M) can be
// open: expires = dateTime + 1 + rand[0, max(2*horizon, 1)) ms, with horizon
// the event time of auctionHorizonEvents events, at most
// ceil(auctionHorizonEvents/rate s) ms. One more ms of slack per horizon.
func maxAuctionLife(rate float64) time.Duration {
	if rate <= 0 {
		rate = 10_000_000
	}
	horizon := int64(math.Ceil(auctionHorizonEvents*1000/rate)) + 1
	return time.Duration(max(2*horizon, 1)) * time.Millisecond
}

// q4Winning is q4's inner query: the winning (highest) bid of each auction
// among the bids placed while it was open, with its category.
//
//	SELECT A.id, A.category, MAX(B.price) AS final
//	FROM auction A, bid B
//	WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
//	GROUP BY A.id, A.category
//
// In sluice an auction's result is final, and emitted in append mode, once
// the watermark passes its expiry. So the auction stream declares its
// watermark on expires (and the bids theirs on dateTime), and the
// aggregation also groups by expires (one value per auction): a grouping
// key that is a watermarked column closes its groups by the watermark.
//
// The join is bounded by a time range between bid dateTime and auction
// expires: BETWEEN gives dateTime - expires <= 0, and a lower bound comes
// from the generator: no auction is open longer than maxAuctionLife of the
// config's event rate, so dateTime >= expires - that is implied by
// dateTime >= A.dateTime and changes no result (the test checks the bound
// on the data). Without it the join would keep every bid. The expires
// watermark's delay is the usual 4 s or the longest auction, if longer
// (expires is out of order by at most that).
//
// The stream emits the auctions that expire at or before its final
// watermark; the batch query returns every auction that got a bid.
func q4Winning(s Streams) *dataset.Dataset {
	return q4Windowed(s).Select("id", "category", "final")
}

// q4Windowed is q4Winning with each auction's expiry; the test keeps the
// batch rows of the auctions the stream closed.
func q4Windowed(s Streams) *dataset.Dataset {
	life := maxAuctionLife(s.Config.EventRate)
	auctions := s.Auction.WithWatermark("expires", max(generate.NexmarkWatermarkDelay, life)).
		Select("id", "category", dataset.Col("dateTime").As("opened"), "expires")
	bids := s.Bid.WithWatermark("dateTime", generate.NexmarkWatermarkDelay).
		Select(dataset.Col("auction").As("id"), "price", dataset.Col("dateTime").As("bidTime"))
	open := dataset.Col("bidTime").Between(dataset.Col("opened"), dataset.Col("expires")).
		And(dataset.Col("bidTime").Ge(dataset.AddDuration(dataset.Col("expires"), 0, -int64(life))))
	return auctions.JoinWhere(bids, []string{"id"}, dataset.Inner, open).
		GroupBy("id", "category", "expires").
		Agg(dataset.Max(dataset.Col("price")).As("final"))
}
