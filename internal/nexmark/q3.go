package nexmark

import "github.com/sluicedata/sluice/dataset"

// q3 finds who sells in category 10 in Oregon, Idaho or California, and
// which auctions (Nexmark's "local item suggestion"). Flink's SQL:
//
//	SELECT P.name, P.city, P.state, A.id
//	FROM auction AS A INNER JOIN person AS P on A.seller = P.id
//	WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')
//
// In sluice both filters go below the join and the join is USING, so each
// side is narrowed to what it contributes, with the key named alike
// (auction.seller and person.id both become seller). Two streams joined with
// no time bound make an unbounded inner join, as in Flink: every person of
// those states and every category-10 auction stays in the join's state
// (about 1 person in 100 events and 1 auction in 83), and each match is
// emitted in the batch where its second side arrives. No watermark is
// needed and the stream emits exactly the batch query's rows.
func q3(s Streams) *dataset.Dataset {
	auctions := s.Auction.
		Filter(dataset.Col("category").Eq(dataset.Lit(int64(10)))).
		Select(dataset.Col("id").As("auction"), "seller")
	sellers := s.Person.
		Filter(dataset.Col("state").In("OR", "ID", "CA")).
		Select(dataset.Col("id").As("seller"), "name", "city", "state")
	return auctions.Join(sellers, []string{"seller"}, dataset.Inner).
		Select("name", "city", "state", dataset.Col("auction").As("id"))
}
