package nexmark

import (
	"cmp"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicedata/sluice/dataset"
	"github.com/sluicedata/sluice/sources/generate"
)

// Streams are the inputs of a Nexmark query: the person, auction and bid
// events of one generator, as streams (over the in-process generator or a
// generated directory's Parquet) or as batch Datasets over that Parquet.
// A query reads only the ones it needs; the others stay out of its plan.
type Streams struct {
	Person, Auction, Bid *dataset.Dataset
	// Config is the generator's config (seed and event rate); q4 derives
	// the longest auction from its event rate.
	Config generate.NexmarkConfig
}

// query builds one Nexmark query over s with the public Dataset API.
type query func(s Streams) *dataset.Dataset

// queries are the runnable queries, by name.
var queries = map[string]query{
	"q0":         q0,
	"q1":         q1,
	"q2":         q2,
	"q3":         q3,
	"q4":         q4,
	"q4-winning": q4Winning,
	"q5":         q5,
	"q7":         q7,
	"q8":         q8,
	"q11":        q11,
}

// unsupported names the Nexmark queries sluice cannot run yet, and why.
var unsupported = map[string]string{}

// updating are the queries whose result changes as rows arrive: they run in
// update output mode (each batch emits the groups it changed), the others
// in append mode.
var updating = map[string]bool{"q4": true}

// QueryNames lists the runnable queries in Nexmark order.
func QueryNames() []string {
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	num := func(n string) int {
		v, _ := strconv.Atoi(strings.TrimLeft(strings.SplitN(n, "-", 2)[0], "q"))
		return v
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(num(a), num(b)), cmp.Compare(a, b)) })
	return names
}

// readStreams returns the Parquet of a generated directory as batch Datasets.
func readStreams(dir string) (Streams, error) {
	m, err := ReadMeta(dir)
	if err != nil {
		return Streams{}, err
	}
	return Streams{
		Person:  dataset.Read(filepath.Join(dir, "person")),
		Auction: dataset.Read(filepath.Join(dir, "auction")),
		Bid:     dataset.Read(filepath.Join(dir, "bid")),
		Config:  generate.NexmarkConfig{Seed: m.Seed, EventRate: m.EventRate},
	}, nil
}

// bidsIn is how many of events [0, n) are bids (event id % 50 >= 4).
func bidsIn(n int64) int64 {
	full, rem := n/50, n%50
	return full*46 + max(rem-4, 0)
}

// kindIn is how many of events [0, n) are of kind: people have event id %
// 50 == 0, auctions 1, 2 or 3, bids the rest.
func kindIn(kind string, n int64) int64 {
	full, rem := n/50, n%50
	switch kind {
	case "person":
		return full + min(rem, 1)
	case "auction":
		return full*3 + min(max(rem-1, 0), 3)
	}
	return bidsIn(n)
}
