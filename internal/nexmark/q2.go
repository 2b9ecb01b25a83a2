package nexmark

import "github.com/sluicedata/sluice/dataset"

// q2 keeps the bids of every 123rd auction.
//
//	SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0
func q2(s Streams) *dataset.Dataset {
	return s.Bid.Filter(dataset.Col("auction").Mod(dataset.Lit(int64(123))).Eq(dataset.Lit(int64(0)))).
		Select("auction", "price")
}
