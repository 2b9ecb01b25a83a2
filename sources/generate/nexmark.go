package generate

// Nexmark: the online-auction benchmark generator of ../shared/nexmark.md.
//
// In: a NexmarkConfig and an event range [from, from+n) of the generator.
// Out: three records (persons, auctions, bids) holding the events of each
// kind in event order, built column by column; no per-event structs.
//
// Invariants:
//  1. Event e (eventId = FirstEventID + e) is a pure function of (Seed,
//     eventId, e): its PRNG is splitmix64 seeded from (Seed, eventId), and
//     its time comes from e alone. Any range can be generated in parallel
//     and a range generated in pieces equals the range generated at once.
//  2. Kinds follow eventId % 50: 0 person, 1..3 auction, 4..49 bid, so every
//     50 consecutive events hold exactly 1 person, 3 auctions and 46 bids.
//  3. dateTime is non-decreasing in e.
//
// Per event (generate):
//
//	r := rng(splitmix64(Seed ^ eventId*golden))
//	t := BaseTime + floor(e * 1e6/EventRate / 1000) ms
//	switch eventId % 50 { 0: person(r, t); 1..3: auction(r, t); default: bid(r, t) }
//	pad the event to its average size with `extra`

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// The generator's constants, as nexmark.md fixes them.
const (
	nexmarkTotal            = 50 // person:auction:bid = 1:3:46
	nexmarkFirstPerson      = 1000
	nexmarkFirstAuction     = 1000
	nexmarkFirstCategory    = 10
	nexmarkCategories       = 5
	nexmarkHotGroup         = 100
	nexmarkActivePeople     = 1000
	nexmarkInFlightAuctions = 100
	nexmarkIDLead           = 10
	nexmarkChannels         = 10000
	// nexmarkHorizonEvents is how many events it takes to open
	// nexmarkInFlightAuctions more auctions (100*50/3).
	nexmarkHorizonEvents = nexmarkInFlightAuctions * nexmarkTotal / 3

	nexmarkAvgPersonBytes  = 200
	nexmarkAvgAuctionBytes = 500
	nexmarkAvgBidBytes     = 100

	// Bytes the fixed-width fields of each kind count towards its size
	// (8 per int64 or timestamp): person id, dateTime; auction id,
	// initialBid, reserve, dateTime, expires, seller, category; bid
	// auction, bidder, price, dateTime.
	nexmarkPersonFixedBytes  = 2 * 8
	nexmarkAuctionFixedBytes = 7 * 8
	nexmarkBidFixedBytes     = 4 * 8
)

// NexmarkWatermarkDelay is how far the watermark declared on a Nexmark
// stream trails dateTime.
const NexmarkWatermarkDelay = 4 * time.Second

var nexmarkTimestamp = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// PersonSchema is the schema of Nexmark person events.
var PersonSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "emailAddress", Type: arrow.BinaryTypes.String},
	{Name: "creditCard", Type: arrow.BinaryTypes.String},
	{Name: "city", Type: arrow.BinaryTypes.String},
	{Name: "state", Type: arrow.BinaryTypes.String},
	{Name: "dateTime", Type: nexmarkTimestamp},
	{Name: "extra", Type: arrow.BinaryTypes.String},
}, nil)

// AuctionSchema is the schema of Nexmark auction events.
var AuctionSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "itemName", Type: arrow.BinaryTypes.String},
	{Name: "description", Type: arrow.BinaryTypes.String},
	{Name: "initialBid", Type: arrow.PrimitiveTypes.Int64},
	{Name: "reserve", Type: arrow.PrimitiveTypes.Int64},
	{Name: "dateTime", Type: nexmarkTimestamp},
	{Name: "expires", Type: nexmarkTimestamp},
	{Name: "seller", Type: arrow.PrimitiveTypes.Int64},
	{Name: "category", Type: arrow.PrimitiveTypes.Int64},
	{Name: "extra", Type: arrow.BinaryTypes.String},
}, nil)

// BidSchema is the schema of Nexmark bid events; price is in cents.
var BidSchema = arrow.NewSchema([]arrow.Field{
	{Name: "auction", Type: arrow.PrimitiveTypes.Int64},
	{Name: "bidder", Type: arrow.PrimitiveTypes.Int64},
	{Name: "price", Type: arrow.PrimitiveTypes.Int64},
	{Name: "channel", Type: arrow.BinaryTypes.String},
	{Name: "url", Type: arrow.BinaryTypes.String},
	{Name: "dateTime", Type: nexmarkTimestamp},
	{Name: "extra", Type: arrow.BinaryTypes.String},
}, nil)

// The fixed lists of Flink's and Beam's Nexmark PersonGenerator.
var (
	nexmarkFirstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	nexmarkLastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
	nexmarkCities     = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	nexmarkStates     = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
)

// The hot channels. Flink draws their urls at random once per process; ours
// are fixed strings of the same shape so every run sees the same data.
var (
	nexmarkHotChannels = []string{"Google", "Facebook", "Baidu", "Apple"}
	nexmarkHotURLs     = []string{
		"https://www.nexmark.com/goo/gle/srch/item.htm?query=1",
		"https://www.nexmark.com/face/boo/k_ad/item.htm?query=1",
		"https://www.nexmark.com/bai/du/mkt/item.htm?query=1",
		"https://www.nexmark.com/appl/e_s/tore/item.htm?query=1",
	}
)

// NexmarkConfig configures the Nexmark generator and its streams.
type NexmarkConfig struct {
	// Name prefixes the streams' names (<Name>_person, ...); default "nexmark".
	Name string
	// Seed of every event's PRNG.
	Seed uint64
	// FirstEventID is the id of event 0 of this generator (>= 0), so a
	// generator may own a contiguous id range.
	FirstEventID int64
	// EventRate is events per second of event time; default 10 000 000.
	EventRate float64
	// BaseTime is the dateTime of event 0; default 2015-07-15T00:00:00Z.
	BaseTime time.Time
	// Events of a bounded stream: Latest stops there. 0 = endless.
	Events int64
	// MaxEventsPerBatch caps how far a stream's Latest moves past its start
	// (in events of all kinds); 0 = no cap.
	MaxEventsPerBatch int64
}

func (c NexmarkConfig) withDefaults() NexmarkConfig {
	if c.Name == "" {
		c.Name = "nexmark"
	}
	if c.EventRate == 0 {
		c.EventRate = 10_000_000
	}
	if c.BaseTime.IsZero() {
		c.BaseTime = time.Date(2015, 7, 15, 0, 0, 0, 0, time.UTC)
	}
	return c
}

// Validate reports a config the generator cannot use; zero values mean the
// defaults.
func (c NexmarkConfig) Validate() error {
	switch {
	case c.FirstEventID < 0:
		return fmt.Errorf("%w: nexmark: FirstEventID %d is negative", ErrConfig, c.FirstEventID)
	case c.EventRate < 0 || math.IsNaN(c.EventRate) || math.IsInf(c.EventRate, 0):
		return fmt.Errorf("%w: nexmark: EventRate %v must be positive and finite", ErrConfig, c.EventRate)
	case c.Events < 0:
		return fmt.Errorf("%w: nexmark: Events %d is negative", ErrConfig, c.Events)
	case c.MaxEventsPerBatch < 0:
		return fmt.Errorf("%w: nexmark: MaxEventsPerBatch %d is negative", ErrConfig, c.MaxEventsPerBatch)
	case c.Events > math.MaxInt64-c.FirstEventID:
		return fmt.Errorf("%w: nexmark: FirstEventID %d + Events %d overflows", ErrConfig, c.FirstEventID, c.Events)
	}
	return nil
}

func (c NexmarkConfig) String() string {
	c = c.withDefaults()
	return fmt.Sprintf("nexmark{name=%s seed=%d first_event_id=%d event_rate=%v base_time=%s events=%d max_events_per_batch=%d}",
		c.Name, c.Seed, c.FirstEventID, c.EventRate, c.BaseTime.UTC().Format(time.RFC3339Nano), c.Events, c.MaxEventsPerBatch)
}

// Generate returns events [from, from+n) of the generator, each kind in its
// own record (person, auction, bid; a record may have no rows), allocated
// from mem; the caller releases all three. It panics if c is invalid or the
// range is negative.
func (c NexmarkConfig) Generate(mem memory.Allocator, from, n int64) (person, auction, bid arrow.Record) {
	recs := c.generate(mem, from, n, kindPerson|kindAuction|kindBid)
	return recs[0], recs[1], recs[2]
}

// nexmarkKind is a bit set of event kinds.
type nexmarkKind uint8

const (
	kindPerson nexmarkKind = 1 << iota
	kindAuction
	kindBid
)

// generate builds the records of the kinds in want; the others are nil.
func (c NexmarkConfig) generate(mem memory.Allocator, from, n int64, want nexmarkKind) (recs [3]arrow.Record) {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		panic(err)
	}
	if from < 0 || n < 0 || from > math.MaxInt64-c.FirstEventID-n {
		panic(fmt.Sprintf("generate: nexmark range [%d, %d+%d) is invalid", from, from, n))
	}
	g := nexmarkGen{seed: c.Seed, clock: newNexmarkClock(c)}
	lo, hi := c.FirstEventID+from, c.FirstEventID+from+n
	np, na, nb := nexmarkCounts(lo, hi)
	if want&kindPerson != 0 {
		g.p = newPersonCols(mem, int(np))
		defer g.p.release()
	}
	if want&kindAuction != 0 {
		g.a = newAuctionCols(mem, int(na))
		defer g.a.release()
	}
	if want&kindBid != 0 {
		g.b = newBidCols(mem, int(nb))
		defer g.b.release()
	}
	var kp, ka, kb int // rows written per kind
	for id, e := lo, from; id < hi; id, e = id+1, e+1 {
		r := id % nexmarkTotal
		switch {
		case r == 0:
			if g.p != nil {
				g.person(id, e, kp)
			}
			kp++
		case r < 4:
			if g.a != nil {
				g.auction(id, e, ka)
			}
			ka++
		default:
			if g.b == nil {
				// skip the bids: jump to the event before the next person
				skip := nexmarkTotal - r - 1
				id, e = id+skip, e+skip
				continue
			}
			g.bid(id, e, kb)
			kb++
		}
	}
	if g.p != nil {
		recs[0] = g.p.record()
	}
	if g.a != nil {
		recs[1] = g.a.record()
	}
	if g.b != nil {
		recs[2] = g.b.record()
	}
	return recs
}

// nexmarkCounts is the number of persons, auctions and bids among ids [lo, hi).
func nexmarkCounts(lo, hi int64) (p, a, b int64) {
	p = nexmarkPersonsBelow(hi) - nexmarkPersonsBelow(lo)
	a = nexmarkAuctionsBelow(hi) - nexmarkAuctionsBelow(lo)
	return p, a, hi - lo - p - a
}

// nexmarkPersonsBelow counts ids in [0, x) with id%50 == 0.
func nexmarkPersonsBelow(x int64) int64 { return (x + nexmarkTotal - 1) / nexmarkTotal }

// nexmarkAuctionsBelow counts ids in [0, x) with id%50 in 1..3.
func nexmarkAuctionsBelow(x int64) int64 {
	return x/nexmarkTotal*3 + min(max(x%nexmarkTotal-1, 0), 3)
}

// nexmarkLastPerson is the newest person id (0-based) at or before id.
func nexmarkLastPerson(id int64) int64 { return id / nexmarkTotal }

// nexmarkLastAuction is the newest auction id (0-based) at or before id.
func nexmarkLastAuction(id int64) int64 {
	epoch, off := id/nexmarkTotal, id%nexmarkTotal
	switch {
	case off < 1:
		epoch--
		off = 2
	case off >= 4:
		off = 2
	default:
		off--
	}
	return epoch*3 + off
}

// nexmarkClock maps event numbers to dateTime in Unix milliseconds.
type nexmarkClock struct {
	baseMs  int64
	rate    int64   // integral EventRate, or 0
	delayUs float64 // 1e6 / EventRate
}

func newNexmarkClock(c NexmarkConfig) nexmarkClock {
	k := nexmarkClock{baseMs: c.BaseTime.UnixMilli(), delayUs: 1e6 / c.EventRate}
	if c.EventRate == math.Trunc(c.EventRate) && c.EventRate <= 1e12 {
		k.rate = int64(c.EventRate)
	}
	return k
}

// ms is baseTime + floor(e * interEventDelayUs / 1000). For an integral
// rate it is computed exactly as floor(e*1000/rate): 1e6/rate is not exact
// in binary, and the float product can land just below a millisecond.
func (k nexmarkClock) ms(e int64) int64 {
	if k.rate > 0 {
		return k.baseMs + e/k.rate*1000 + e%k.rate*1000/k.rate
	}
	return k.baseMs + int64(math.Floor(float64(e)*k.delayUs/1000))
}

// nexmarkRand is an event's PRNG: a splitmix64 sequence.
type nexmarkRand struct{ s uint64 }

const golden = 0x9e3779b97f4a7c15

func newNexmarkRand(seed uint64, id int64) nexmarkRand {
	return nexmarkRand{s: splitmix64(seed ^ uint64(id)*golden)}
}

func (r *nexmarkRand) next() uint64 {
	r.s += golden
	x := r.s
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// intn is uniform in [0, n) for n > 0 (multiply-high; the bias is below
// n/2^64).
func (r *nexmarkRand) intn(n int64) int64 {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int64(hi)
}

// price is round(10^(6u) * 100) cents for u uniform in [0, 1) with 53
// bits. math.Pow took a fifth of the generator's time; instead 6u = i + f
// in fixed point, 10^i is exact, 10^f is a table entry for f's top 10 bits
// (8 KB) times e^x for the rest (x < 0.0023, four Taylor terms, relative
// error below 1e-15, far under the half cent rounding could notice).
func (r *nexmarkRand) price() int64 {
	t := (r.next() >> 11) * 6 // 6u in fixed point, 53 fraction bits
	i := t >> 53
	f := t & (1<<53 - 1)
	x := float64(f&(1<<43-1)) * (math.Ln10 * 0x1p-53)
	x2 := x * x
	e := (1 + x) + x2*((1.0/2+x*(1.0/6))+x2*(1.0/24))
	return int64(nexmarkPow10[i]*nexmarkPow10Frac[f>>43]*e*100 + 0.5)
}

var (
	nexmarkPow10     = [6]float64{1, 10, 100, 1000, 10000, 100000}
	nexmarkPow10Frac = func() (t [1 << 10]float64) {
		for k := range t {
			t[k] = math.Pow(10, float64(k)/(1<<10))
		}
		return t
	}()
)

// str appends 3 + rand(max-3) characters, each special with P 1/13 and
// else a letter a-z, and trims spaces at both ends. One 64-bit draw yields
// four characters, one per 16-bit lane v: c = v*338>>16 is a digit in
// [0, 13*26) (P 1/13 of c < 26 to within 1e-4); the lanes are independent,
// so the CPU works on them in parallel.
func (r *nexmarkRand) str(dst []byte, max int64, special byte) []byte {
	n := int(3 + r.intn(max-3))
	start := len(dst)
	dst = slices.Grow(dst, n+4)
	s := dst[start : start+n+4]
	for i := 0; i < n; i += 4 {
		x := r.next()
		for k := range 4 {
			c := (x >> (16 * k) & 0xffff) * (13 * 26) >> 16
			s[i+k] = nexmarkChars[c]
		}
	}
	s = s[:n]
	if special != ' ' {
		for i, ch := range s {
			if ch == ' ' {
				s[i] = special
			}
		}
		return dst[:start+n]
	}
	i, j := 0, len(s)
	for i < j && s[i] == ' ' {
		i++
	}
	for j > i && s[j-1] == ' ' {
		j--
	}
	if i > 0 {
		copy(s, s[i:j])
	}
	return dst[:start+j-i]
}

// nexmarkChars maps a digit in [0, 338) to a space (the first 26) or a letter.
var nexmarkChars = func() (t [13 * 26]byte) {
	for c := range t {
		if c < 26 {
			t[c] = ' '
		} else {
			t[c] = byte('a' + c%26)
		}
	}
	return t
}()

// letters appends n letters a-z, eight per 64-bit draw: each byte b of the
// draw becomes 'a' + b*26/256, computed for four bytes at once in 16-bit
// lanes. Letters come out with P 9/256 or 10/256 instead of 1/26; they only
// pad events (extra), and this made padding three times cheaper than one
// exact base-26 digit per letter.
func (r *nexmarkRand) letters(dst []byte, n int) []byte {
	dst = slices.Grow(dst, n+8)
	end := len(dst) + n
	s := dst[len(dst) : len(dst)+n+8]
	for i := 0; i < n; i += 8 {
		x := r.next()
		const lanes = 0x00ff00ff00ff00ff
		even := ((x&lanes)*26>>8)&lanes + 0x0061006100610061
		odd := ((x>>8&lanes)*26>>8)&lanes + 0x0061006100610061
		binary.LittleEndian.PutUint64(s[i:], even|odd<<8)
	}
	return dst[:end]
}

// extra appends the padding that brings an event of size bytes to avg on
// average: d = avg - size missing bytes, length d - delta + rand(2*delta)
// with delta = round(0.2*d); nothing when the event is already big enough.
func (r *nexmarkRand) extra(dst []byte, size, avg int) []byte {
	d := avg - size
	if d <= 0 {
		return dst
	}
	delta := (2*d + 5) / 10 // round(0.2*d), exactly
	n := d - delta
	if delta > 0 {
		n += int(r.intn(int64(2 * delta)))
	}
	return r.letters(dst, n)
}

// randomPerson is a 0-based person id among the active people, or up to
// nexmarkIDLead beyond the newest.
func (r *nexmarkRand) randomPerson(id int64) int64 {
	n := nexmarkLastPerson(id) + 1
	active := min(n, nexmarkActivePeople)
	return n - active + r.intn(active+nexmarkIDLead)
}

// randomAuction is a 0-based auction id among the in-flight auctions, or
// up to nexmarkIDLead beyond the newest.
func (r *nexmarkRand) randomAuction(id int64) int64 {
	hi := nexmarkLastAuction(id)
	lo := max(hi-nexmarkInFlightAuctions, 0)
	return lo + r.intn(hi-lo+1+nexmarkIDLead)
}

// nexmarkGen holds the column builders of one generate call.
type nexmarkGen struct {
	seed  uint64
	clock nexmarkClock
	p     *personCols
	a     *auctionCols
	b     *bidCols
	ch    *nexmarkChannelTable // loaded on the first non-hot bid
}

type personCols struct {
	n                                     int
	id, dateTime                          intCol
	name, email, card, city, state, extra strCol
}

func newPersonCols(mem memory.Allocator, n int) *personCols {
	return &personCols{n: n, id: newIntCol(mem, n), dateTime: newIntCol(mem, n),
		name: newStrCol(mem, n, 12), email: newStrCol(mem, n, 14), card: newStrCol(mem, n, 19),
		city: newStrCol(mem, n, 8), state: newStrCol(mem, n, 2), extra: newStrCol(mem, n, 140)}
}

func (c *personCols) record() arrow.Record {
	return newNexmarkRecord(PersonSchema, c.n, c.id.array(arrow.PrimitiveTypes.Int64), c.name.array(),
		c.email.array(), c.card.array(), c.city.array(), c.state.array(),
		c.dateTime.array(nexmarkTimestamp), c.extra.array())
}

func (c *personCols) release() {
	c.id.release()
	c.dateTime.release()
	for _, s := range []*strCol{&c.name, &c.email, &c.card, &c.city, &c.state, &c.extra} {
		s.release()
	}
}

type auctionCols struct {
	n                                                            int
	id, initialBid, reserve, dateTime, expires, seller, category intCol
	itemName, description, extra                                 strCol
}

func newAuctionCols(mem memory.Allocator, n int) *auctionCols {
	return &auctionCols{n: n, id: newIntCol(mem, n), initialBid: newIntCol(mem, n),
		reserve: newIntCol(mem, n), dateTime: newIntCol(mem, n), expires: newIntCol(mem, n),
		seller: newIntCol(mem, n), category: newIntCol(mem, n),
		itemName: newStrCol(mem, n, 11), description: newStrCol(mem, n, 52), extra: newStrCol(mem, n, 400)}
}

func (c *auctionCols) record() arrow.Record {
	i64 := arrow.PrimitiveTypes.Int64
	return newNexmarkRecord(AuctionSchema, c.n, c.id.array(i64), c.itemName.array(), c.description.array(),
		c.initialBid.array(i64), c.reserve.array(i64), c.dateTime.array(nexmarkTimestamp),
		c.expires.array(nexmarkTimestamp), c.seller.array(i64), c.category.array(i64), c.extra.array())
}

func (c *auctionCols) release() {
	for _, x := range []*intCol{&c.id, &c.initialBid, &c.reserve, &c.dateTime, &c.expires, &c.seller, &c.category} {
		x.release()
	}
	for _, s := range []*strCol{&c.itemName, &c.description, &c.extra} {
		s.release()
	}
}

type bidCols struct {
	n                                int
	auction, bidder, price, dateTime intCol
	channel, url, extra              strCol
}

func newBidCols(mem memory.Allocator, n int) *bidCols {
	return &bidCols{n: n, auction: newIntCol(mem, n), bidder: newIntCol(mem, n),
		price: newIntCol(mem, n), dateTime: newIntCol(mem, n),
		channel: newStrCol(mem, n, 10), url: newStrCol(mem, n, 64), extra: newStrCol(mem, n, 8)}
}

func (c *bidCols) record() arrow.Record {
	i64 := arrow.PrimitiveTypes.Int64
	return newNexmarkRecord(BidSchema, c.n, c.auction.array(i64), c.bidder.array(i64), c.price.array(i64),
		c.channel.array(), c.url.array(), c.dateTime.array(nexmarkTimestamp), c.extra.array())
}

func (c *bidCols) release() {
	for _, x := range []*intCol{&c.auction, &c.bidder, &c.price, &c.dateTime} {
		x.release()
	}
	for _, s := range []*strCol{&c.channel, &c.url, &c.extra} {
		s.release()
	}
}

// Longest values the generator writes, for strCol.open.
const (
	nexmarkMaxExtra = nexmarkAvgAuctionBytes*6/5 + 8
	nexmarkMaxName  = 16
	nexmarkMaxEmail = 6 + 1 + 4 + 4
)

func (g *nexmarkGen) person(id, e int64, k int) {
	r := newNexmarkRand(g.seed, id)
	c := g.p
	size := nexmarkPersonFixedBytes
	c.id.v[k] = nexmarkLastPerson(id) + nexmarkFirstPerson

	first := nexmarkFirstNames[r.intn(int64(len(nexmarkFirstNames)))]
	last := nexmarkLastNames[r.intn(int64(len(nexmarkLastNames)))]
	b := c.name.open(len(first) + 1 + len(last))
	start := len(b)
	b = append(append(append(b, first...), ' '), last...)
	size += len(b) - start
	c.name.commit(b)

	b = c.email.open(nexmarkMaxEmail)
	start = len(b)
	b = r.str(b, 7, ' ')
	b = append(b, '@')
	b = r.str(b, 5, ' ')
	b = append(b, ".com"...)
	size += len(b) - start
	c.email.commit(b)

	// four 4-digit groups from one draw uniform in [0, 10^16)
	hi, _ := bits.Mul64(r.next(), 1e16)
	var card [19]byte
	for i := len(card) - 1; i >= 0; i-- {
		if i%5 == 4 {
			card[i] = ' '
			continue
		}
		card[i] = byte('0' + hi%10)
		hi /= 10
	}
	c.card.addBytes(card[:])
	size += len(card)

	city := nexmarkCities[r.intn(int64(len(nexmarkCities)))]
	c.city.add(city)
	state := nexmarkStates[r.intn(int64(len(nexmarkStates)))]
	c.state.add(state)
	size += len(city) + len(state)

	c.dateTime.v[k] = g.clock.ms(e)
	c.extra.commit(r.extra(c.extra.open(nexmarkMaxExtra), size, nexmarkAvgPersonBytes))
}

func (g *nexmarkGen) auction(id, e int64, k int) {
	r := newNexmarkRand(g.seed, id)
	c := g.a
	size := nexmarkAuctionFixedBytes
	c.id.v[k] = nexmarkLastAuction(id) + nexmarkFirstAuction

	b := c.itemName.open(20)
	start := len(b)
	b = r.str(b, 20, ' ')
	size += len(b) - start
	c.itemName.commit(b)
	b = c.description.open(100)
	start = len(b)
	b = r.str(b, 100, ' ')
	size += len(b) - start
	c.description.commit(b)

	initial := r.price()
	c.initialBid.v[k] = initial
	c.reserve.v[k] = initial + r.price()

	t := g.clock.ms(e)
	c.dateTime.v[k] = t
	horizon := g.clock.ms(e+nexmarkHorizonEvents) - t
	c.expires.v[k] = t + 1 + r.intn(max(2*horizon, 1))

	var seller int64
	if r.intn(4) > 0 {
		seller = nexmarkLastPerson(id) / nexmarkHotGroup * nexmarkHotGroup
	} else {
		seller = r.randomPerson(id)
	}
	c.seller.v[k] = seller + nexmarkFirstPerson
	c.category.v[k] = nexmarkFirstCategory + r.intn(nexmarkCategories)

	c.extra.commit(r.extra(c.extra.open(nexmarkMaxExtra), size, nexmarkAvgAuctionBytes))
}

func (g *nexmarkGen) bid(id, e int64, k int) {
	r := newNexmarkRand(g.seed, id)
	c := g.b
	size := nexmarkBidFixedBytes

	var auction int64
	if r.intn(2) > 0 {
		auction = nexmarkLastAuction(id) / nexmarkHotGroup * nexmarkHotGroup
	} else {
		auction = r.randomAuction(id)
	}
	c.auction.v[k] = auction + nexmarkFirstAuction

	var bidder int64
	if r.intn(4) > 0 {
		bidder = nexmarkLastPerson(id)/nexmarkHotGroup*nexmarkHotGroup + 1
	} else {
		bidder = r.randomPerson(id)
	}
	c.bidder.v[k] = bidder + nexmarkFirstPerson
	c.price.v[k] = r.price()

	if r.intn(2) > 0 {
		i := r.intn(int64(len(nexmarkHotChannels)))
		c.channel.add(nexmarkHotChannels[i])
		c.url.add(nexmarkHotURLs[i])
		size += len(nexmarkHotChannels[i]) + len(nexmarkHotURLs[i])
	} else {
		channel, url := g.channels().channel(r.intn(nexmarkChannels))
		c.channel.addBytes(channel)
		c.url.addBytes(url)
		size += len(channel) + len(url)
	}
	c.dateTime.v[k] = g.clock.ms(e)
	c.extra.commit(r.extra(c.extra.open(nexmarkAvgBidBytes*6/5+8), size, nexmarkAvgBidBytes))
}

// nexmarkChannelTable holds the names and urls of the 10 000 channels of
// one seed, channel n's name and url side by side in one slab so a bid
// touches one or two cache lines. Building it costs about a millisecond,
// formatting a url per bid cost a tenth of the generator's time, so the
// newest table is kept.
type nexmarkChannelTable struct {
	seed    uint64
	slab    []byte
	off     [nexmarkChannels + 1]int32 // channel n is slab[off[n]:off[n+1]]
	nameLen [nexmarkChannels]uint8
}

// channel returns channel n's name and url.
func (t *nexmarkChannelTable) channel(n int64) (name, url []byte) {
	b := t.slab[t.off[n]:t.off[n+1]]
	return b[:t.nameLen[n]], b[t.nameLen[n]:]
}

var nexmarkChannelCache atomic.Pointer[nexmarkChannelTable]

func (g *nexmarkGen) channels() *nexmarkChannelTable {
	if g.ch != nil {
		return g.ch
	}
	t := nexmarkChannelCache.Load()
	if t == nil || t.seed != g.seed {
		t = &nexmarkChannelTable{seed: g.seed, slab: make([]byte, 0, nexmarkChannels*80)}
		for n := range int64(nexmarkChannels) {
			start := len(t.slab)
			t.slab = strconv.AppendInt(append(t.slab, "channel-"...), n, 10)
			t.nameLen[n] = uint8(len(t.slab) - start)
			t.slab = nexmarkChannelURL(t.slab, g.seed, n)
			t.off[n+1] = int32(len(t.slab))
		}
		nexmarkChannelCache.Store(t)
	}
	g.ch = t
	return t
}

// nexmarkChannelURL appends channel n's url, a function of (seed, n) alone
// as in Flink, where a cache keyed by n makes it fixed per channel: three
// str(5) path parts ('_' instead of a space, as Flink does for urls) and,
// for 9 in 10 channels, &channel_id=abs(reverse_bits32(n)).
func nexmarkChannelURL(dst []byte, seed uint64, n int64) []byte {
	r := nexmarkRand{s: splitmix64(seed ^ 0x6e65786d61726b63 ^ uint64(n)*golden)}
	dst = append(dst, "https://www.nexmark.com/"...)
	for i := 0; i < 3; i++ {
		dst = r.str(dst, 5, '_')
		dst = append(dst, '/')
	}
	dst = append(dst, "item.htm?query=1"...)
	if r.intn(10) > 0 {
		// abs in 64 bits: Java's Math.abs(Integer.MIN_VALUE) stays
		// negative for n = 1; ours is 2147483648.
		v := int64(int32(bits.Reverse32(uint32(n))))
		if v < 0 {
			v = -v
		}
		dst = strconv.AppendInt(append(dst, "&channel_id="...), v, 10)
	}
	return dst
}
