package nexmark

import "github.com/sluicedata/sluice/dataset"

// q0 is Nexmark's pass-through: every bid, every column.
//
//	SELECT auction, bidder, price, channel, url, dateTime, extra FROM bid
func q0(s Streams) *dataset.Dataset {
	return s.Bid.Select("auction", "bidder", "price", "channel", "url", "dateTime", "extra")
}
