package nexmark

import "github.com/sluicedata/sluice/dataset"

// q1 converts bid prices to euros, keeping Flink's q1 columns.
//
//	SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid
//
// Flink computes a DECIMAL; here price becomes a float64.
func q1(s Streams) *dataset.Dataset {
	return s.Bid.Select("auction", "bidder",
		dataset.Col("price").Mul(dataset.Lit(0.908)).As("price"),
		"dateTime", "extra")
}
