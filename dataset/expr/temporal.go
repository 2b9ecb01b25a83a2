package expr

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
)

var locations sync.Map // zone name -> *time.Location

// loadLocation resolves an Arrow time zone: "" and "UTC" are UTC, "+05:30"
// style offsets are fixed zones, anything else goes to time.LoadLocation
// (cached for the life of the process).
func loadLocation(tz string) (*time.Location, error) {
	if tz == "" || tz == "UTC" || tz == "Z" {
		return time.UTC, nil
	}
	if l, ok := locations.Load(tz); ok {
		return l.(*time.Location), nil
	}
	var loc *time.Location
	if (tz[0] == '+' || tz[0] == '-') && len(tz) == 6 && tz[3] == ':' {
		h, err1 := strconv.Atoi(tz[1:3])
		m, err2 := strconv.Atoi(tz[4:6])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad time zone %q", tz)
		}
		off := h*3600 + m*60
		if tz[0] == '-' {
			off = -off
		}
		loc = time.FixedZone(tz, off)
	} else {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("bad time zone %q: %v", tz, err)
		}
		loc = l
	}
	locations.Store(tz, loc)
	return loc, nil
}

func daysToTime(d int32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func timeToDays(t time.Time) int32 {
	y, m, d := t.Date()
	return int32(floorDiv(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(), 86400))
}

// truncTime truncates t (already in its zone) to unit, on the calendar of
// t's location. Weeks start on Monday.
func truncTime(t time.Time, unit string) time.Time {
	y, m, d := t.Date()
	loc := t.Location()
	switch unit {
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, loc)
	case "quarter":
		return time.Date(y, (m-1)/3*3+1, 1, 0, 0, 0, 0, loc)
	case "month":
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	case "week":
		return time.Date(y, m, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, loc)
	case "day":
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	case "hour":
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, loc)
	case "minute":
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, loc)
	}
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, loc)
}

func extractField(t time.Time, field string) int64 {
	switch field {
	case "year":
		return int64(t.Year())
	case "quarter":
		return int64((t.Month()-1)/3 + 1)
	case "month":
		return int64(t.Month())
	case "day":
		return int64(t.Day())
	case "dayofweek": // Spark: 1 = Sunday .. 7 = Saturday
		return int64(t.Weekday()) + 1
	case "dayofyear":
		return int64(t.YearDay())
	case "hour":
		return int64(t.Hour())
	case "minute":
		return int64(t.Minute())
	case "second":
		return int64(t.Second())
	}
	return t.Unix()
}

// addMonths adds calendar months, clamping the day to the target month's end.
func addMonths(t time.Time, months int32) time.Time {
	if months == 0 {
		return t
	}
	y, m, d := t.Date()
	target := time.Date(y, m+time.Month(months), 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(target.Year(), target.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
	return time.Date(target.Year(), target.Month(), min(d, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

func (ev *evaluator) temporal(e *Expr, dt arrow.DataType) (val, error) {
	v, err := ev.eval(e.Args[0])
	if err != nil {
		return val{}, err
	}
	defer v.release()
	if v.null() {
		return val{lit: &Literal{Type: Type{dt}, Null: true}, dt: dt}, nil
	}
	a, _ := ev.materialize(v)
	if v.scalar() {
		defer a.Release()
	}
	in := a.DataType()
	n := ev.n
	valid, nulls := andValidity(ev.mem, n, a)

	if in.ID() == arrow.DATE32 {
		src := fixedValues[int32](a)
		if e.Op == OpExtract && e.Name == "epoch" || (e.Op == OpExtract && false) {
			buf := allocBuf(ev.mem, n*8)
			out := arrow.GetData[int64](buf.Bytes())[:n]
			for i, d := range src {
				out[i] = int64(d) * 86400
			}
			return val{arr: makeArray(dt, n, valid, nulls, buf), dt: dt}, nil
		}
		buf := allocBuf(ev.mem, n*4)
		out := arrow.GetData[int32](buf.Bytes())[:n]
		for i, d := range src {
			switch e.Op {
			case OpExtract:
				out[i] = int32(extractField(daysToTime(d), e.Name))
			case OpDateTrunc:
				switch e.Name {
				case "day", "hour", "minute", "second":
					out[i] = d
				default:
					out[i] = timeToDays(truncTime(daysToTime(d), e.Name))
				}
			default:
				out[i] = timeToDays(addMonths(daysToTime(d), e.Months)) + int32(e.Dur/(86400*1e9))
			}
		}
		return val{arr: makeArray(dt, n, valid, nulls, buf), dt: dt}, nil
	}

	ts := in.(*arrow.TimestampType)
	loc, err := loadLocation(ts.TimeZone)
	if err != nil {
		releaseBuf(valid)
		return val{}, ev.b.errf(e, "%v", err)
	}
	src := fixedValues[int64](a)
	per := unitPerSec[ts.Unit]
	if e.Op == OpExtract && dt.ID() == arrow.INT32 {
		buf := allocBuf(ev.mem, n*4)
		out := arrow.GetData[int32](buf.Bytes())[:n]
		for i, x := range src {
			out[i] = int32(extractField(tsToTime(x, ts.Unit).In(loc), e.Name))
		}
		return val{arr: makeArray(dt, n, valid, nulls, buf), dt: dt}, nil
	}
	buf := allocBuf(ev.mem, n*8)
	out := arrow.GetData[int64](buf.Bytes())[:n]
	switch e.Op {
	case OpExtract: // epoch seconds
		for i, x := range src {
			out[i] = floorDiv(x, per)
		}
	case OpDateTrunc:
		step := map[string]int64{"second": 1, "minute": 60, "hour": 3600, "day": 86400}[e.Name]
		if step != 0 && loc == time.UTC {
			k := step * per
			for i, x := range src {
				out[i] = floorDiv(x, k) * k
			}
			break
		}
		for i, x := range src {
			out[i] = timeToUnit(truncTime(tsToTime(x, ts.Unit).In(loc), e.Name), ts.Unit)
		}
	default:
		nanosPer := int64(1e9) / per
		d := e.Dur / nanosPer
		for i, x := range src {
			if e.Months != 0 {
				x = timeToUnit(addMonths(tsToTime(x, ts.Unit).In(loc), e.Months), ts.Unit)
			}
			out[i] = x + d
		}
	}
	return val{arr: makeArray(dt, n, valid, nulls, buf), dt: dt}, nil
}
