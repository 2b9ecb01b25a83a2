package nexmark

import (
	"time"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sources/generate"
)

// q8Window is q8's tumbling window.
const q8Window = 10 * time.Second

// q8 finds the people who registered and opened an auction in the same
// 10 s tumbling window (Nexmark's "monitor new users"). Flink's SQL:
//
//	SELECT P.id, P.name, P.starttime
//	FROM (
//	  SELECT id, name, window_start AS starttime, window_end AS endtime
//	  FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	  GROUP BY id, name, window_start, window_end
//	) P
//	JOIN (
//	  SELECT seller, window_start AS starttime, window_end AS endtime
//	  FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
//	  GROUP BY seller, window_start, window_end
//	) A
//	ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime
//
// In sluice each side is a windowed aggregate (GROUP BY without aggregate
// functions is Agg with none: the distinct keys), both with the watermark
// dateTime - 4 s, joined on the person id and the window's end. Equal window
// ends on both sides bound the join's state: each side's windows are
// emitted once, when the watermark passes their end, meet in that batch,
// and leave state. The start is implied by the end, so it is not a key
// (the person side keeps it as starttime). The stream emits the rows of the
// windows that end at or before its final watermark.
func q8(s Streams) *dataset.Dataset {
	people := s.Person.WithWatermark("dateTime", generate.NexmarkWatermarkDelay).
		GroupBy(dataset.Window("dateTime", q8Window), "id", "name").Agg().
		Select("id", "name", dataset.Col(dataset.WindowStart).As("starttime"), dataset.WindowEnd)
	sellers := s.Auction.WithWatermark("dateTime", generate.NexmarkWatermarkDelay).
		GroupBy(dataset.Window("dateTime", q8Window), "seller").Agg().
		Select(dataset.Col("seller").As("id"), dataset.WindowEnd)
	return people.Join(sellers, []string{"id", dataset.WindowEnd}, dataset.Inner).
		Select("id", "name", "starttime")
}
