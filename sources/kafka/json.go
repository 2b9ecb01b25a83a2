package kafka

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/decimal128"
)

// JSON values are decoded by a small scanner straight into per-field slots
// and then appended to the Arrow builders, so a record that fails half-way
// leaves no partial row and no per-record map[string]any is built.
//
// Value types (ValueSchema field types):
//
//	int64, int32      JSON integer
//	float64           JSON number
//	string            JSON string (valid UTF-8)
//	bool              true / false
//	timestamp[any]    RFC 3339 string, or an integer of epoch milliseconds
//	date32            "2006-01-02" string, or an integer of days since epoch
//	decimal128(p, s)  JSON number or string, e.g. 12.30 or "12.30"
//
// Every type also takes null. A missing field is null; a null or missing
// non-nullable field, a wrong type, an out-of-range number or malformed JSON
// makes the record bad. Unknown fields (of any JSON shape) are skipped.

type kind uint8

const (
	kInt64 kind = iota
	kInt32
	kFloat64
	kString
	kBool
	kTimestamp
	kDate32
	kDecimal
)

var errNotObject = errors.New("value is not a JSON object")

func kindOf(t arrow.DataType) (kind, bool) {
	switch t.ID() {
	case arrow.INT64:
		return kInt64, true
	case arrow.INT32:
		return kInt32, true
	case arrow.FLOAT64:
		return kFloat64, true
	case arrow.STRING:
		return kString, true
	case arrow.BOOL:
		return kBool, true
	case arrow.TIMESTAMP:
		return kTimestamp, true
	case arrow.DATE32:
		return kDate32, true
	case arrow.DECIMAL128:
		return kDecimal, true
	}
	return 0, false
}

func checkValueSchema(s *arrow.Schema) error {
	if len(s.Fields()) == 0 {
		return errors.New("no fields")
	}
	seen := map[string]bool{}
	for _, f := range s.Fields() {
		if _, ok := kindOf(f.Type); !ok {
			return fmt.Errorf("field %q: type %s is not supported (int64, int32, float64, string, bool, timestamp, date32, decimal128)", f.Name, f.Type)
		}
		if seen[f.Name] {
			return fmt.Errorf("field %q appears twice", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// slot holds one field's value of the record being decoded.
type slot struct {
	state uint8 // 0 missing, 1 null, 2 set
	i     int64 // ints, timestamps, dates
	f     float64
	b     bool
	s     []byte // string: points into the value or into buf
	buf   []byte // unescaped string bytes, reused
	d     decimal128.Num
}

type jsonDecoder struct {
	fields   []arrow.Field
	kinds    []kind
	units    []arrow.TimeUnit
	byName   map[string]int
	slots    []slot
	keyBuf   []byte
	builders []array.Builder
	skip     bool // the last record was bad and is dropped
}

func newJSONDecoder(s *arrow.Schema) *jsonDecoder {
	d := &jsonDecoder{fields: s.Fields(), byName: make(map[string]int)}
	for i, f := range d.fields {
		k, _ := kindOf(f.Type)
		d.kinds = append(d.kinds, k)
		var u arrow.TimeUnit
		if ts, ok := f.Type.(*arrow.TimestampType); ok {
			u = ts.Unit
		}
		d.units = append(d.units, u)
		d.byName[f.Name] = i
	}
	d.slots = make([]slot, len(d.fields))
	return d
}

// decode parses one value into the slots; on error nothing was appended.
func (d *jsonDecoder) decode(data []byte) error {
	for i := range d.slots {
		d.slots[i].state = 0
	}
	p := skipWS(data, 0)
	if p >= len(data) || data[p] != '{' {
		return errNotObject
	}
	p = skipWS(data, p+1)
	next := 0 // the field expected next
	if p < len(data) && data[p] == '}' {
		p++
	} else {
		for {
			key, np, err := readString(data, p, &d.keyBuf)
			if err != nil {
				return err
			}
			p = skipWS(data, np)
			if p >= len(data) || data[p] != ':' {
				return syntaxErr(data, p, "':'")
			}
			p = skipWS(data, p+1)
			// Producers usually write fields in one order: try the field after
			// the previous one before hashing the name.
			idx, ok := next, next < len(d.fields) && string(key) == d.fields[next].Name
			if !ok {
				idx, ok = d.byName[string(key)]
			}
			if ok {
				next = idx + 1
				p, err = d.readField(idx, data, p)
			} else {
				p, err = skipValue(data, p, 0)
			}
			if err != nil {
				return err
			}
			p = skipWS(data, p)
			if p < len(data) && data[p] == ',' {
				p = skipWS(data, p+1)
				continue
			}
			if p < len(data) && data[p] == '}' {
				p++
				break
			}
			return syntaxErr(data, p, "',' or '}'")
		}
	}
	if p = skipWS(data, p); p != len(data) {
		return syntaxErr(data, p, "end of value")
	}
	for i := range d.slots {
		if d.slots[i].state != 2 && !d.fields[i].Nullable {
			return fmt.Errorf("field %q is missing or null but not nullable", d.fields[i].Name)
		}
	}
	return nil
}

// append adds the decoded row to the builders.
func (d *jsonDecoder) append() {
	for i := range d.slots {
		sl := &d.slots[i]
		b := d.builders[i]
		if sl.state != 2 {
			b.AppendNull()
			continue
		}
		switch d.kinds[i] {
		case kInt64:
			b.(*array.Int64Builder).Append(sl.i)
		case kInt32:
			b.(*array.Int32Builder).Append(int32(sl.i))
		case kFloat64:
			b.(*array.Float64Builder).Append(sl.f)
		case kString:
			b.(*array.StringBuilder).BinaryBuilder.Append(sl.s)
		case kBool:
			b.(*array.BooleanBuilder).Append(sl.b)
		case kTimestamp:
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(sl.i))
		case kDate32:
			b.(*array.Date32Builder).Append(arrow.Date32(sl.i))
		case kDecimal:
			b.(*array.Decimal128Builder).Append(sl.d)
		}
	}
}

func (d *jsonDecoder) readField(idx int, data []byte, p int) (int, error) {
	sl := &d.slots[idx]
	f := d.fields[idx]
	if p < len(data) && data[p] == 'n' {
		np, err := literal(data, p, "null")
		if err != nil {
			return 0, err
		}
		sl.state = 1
		return np, nil
	}
	at := p
	wrong := func(want string) error {
		return fmt.Errorf("field %q: want %s at byte %d", f.Name, want, at)
	}
	var err error
	switch d.kinds[idx] {
	case kInt64, kInt32:
		var tok []byte
		tok, p, err = number(data, p)
		if err != nil {
			return 0, wrong("an integer")
		}
		v, err := strconv.ParseInt(string(tok), 10, 64)
		if err != nil || (d.kinds[idx] == kInt32 && (v < math.MinInt32 || v > math.MaxInt32)) {
			return 0, fmt.Errorf("field %q: %q is not a %s", f.Name, tok, f.Type)
		}
		sl.i = v
	case kFloat64:
		var tok []byte
		tok, p, err = number(data, p)
		if err != nil {
			return 0, wrong("a number")
		}
		v, err := strconv.ParseFloat(string(tok), 64)
		if err != nil {
			return 0, fmt.Errorf("field %q: %q is not a float64", f.Name, tok)
		}
		sl.f = v
	case kString:
		if p >= len(data) || data[p] != '"' {
			return 0, wrong("a string")
		}
		sl.s, p, err = readString(data, p, &sl.buf)
		if err != nil {
			return 0, err
		}
	case kBool:
		switch {
		case p < len(data) && data[p] == 't':
			p, err = literal(data, p, "true")
			sl.b = true
		case p < len(data) && data[p] == 'f':
			p, err = literal(data, p, "false")
			sl.b = false
		default:
			return 0, wrong("true or false")
		}
		if err != nil {
			return 0, err
		}
	case kTimestamp:
		unit := d.units[idx]
		if p < len(data) && data[p] == '"' {
			var s []byte
			s, p, err = readString(data, p, &sl.buf)
			if err != nil {
				return 0, err
			}
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				return 0, fmt.Errorf("field %q: %q is not an RFC 3339 time", f.Name, s)
			}
			sl.i, err = timeIn(t, unit)
			if err != nil {
				return 0, fmt.Errorf("field %q: %w", f.Name, err)
			}
		} else {
			var tok []byte
			tok, p, err = number(data, p)
			if err != nil {
				return 0, wrong("an RFC 3339 string or epoch milliseconds")
			}
			ms, err := strconv.ParseInt(string(tok), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("field %q: %q is not epoch milliseconds", f.Name, tok)
			}
			sl.i, err = msIn(ms, unit)
			if err != nil {
				return 0, fmt.Errorf("field %q: %w", f.Name, err)
			}
		}
	case kDate32:
		if p < len(data) && data[p] == '"' {
			var s []byte
			s, p, err = readString(data, p, &sl.buf)
			if err != nil {
				return 0, err
			}
			t, err := time.Parse(time.DateOnly, string(s))
			if err != nil {
				return 0, fmt.Errorf("field %q: %q is not a date (2006-01-02)", f.Name, s)
			}
			sl.i = t.Unix() / 86400
		} else {
			var tok []byte
			tok, p, err = number(data, p)
			if err != nil {
				return 0, wrong("a date string or days since epoch")
			}
			v, err := strconv.ParseInt(string(tok), 10, 32)
			if err != nil {
				return 0, fmt.Errorf("field %q: %q is not days since epoch", f.Name, tok)
			}
			sl.i = v
		}
	case kDecimal:
		dt := f.Type.(*arrow.Decimal128Type)
		var tok []byte
		if p < len(data) && data[p] == '"' {
			tok, p, err = readString(data, p, &sl.buf)
		} else {
			tok, p, err = number(data, p)
		}
		if err != nil {
			return 0, wrong("a decimal number or string")
		}
		sl.d, err = parseDecimal(tok, dt.Precision, dt.Scale)
		if err != nil {
			return 0, fmt.Errorf("field %q: %q is not a %s: %w", f.Name, tok, dt, err)
		}
	}
	sl.state = 2
	return p, nil
}

func timeIn(t time.Time, u arrow.TimeUnit) (int64, error) {
	switch u {
	case arrow.Second:
		return t.Unix(), nil
	case arrow.Millisecond:
		return t.UnixMilli(), nil
	case arrow.Microsecond:
		return t.UnixMicro(), nil
	}
	if t.Year() < 1678 || t.Year() > 2261 {
		return 0, fmt.Errorf("%s is out of range for nanoseconds", t)
	}
	return t.UnixNano(), nil
}

func msIn(ms int64, u arrow.TimeUnit) (int64, error) {
	switch u {
	case arrow.Second:
		return ms / 1000, nil
	case arrow.Millisecond:
		return ms, nil
	case arrow.Microsecond:
		if ms > math.MaxInt64/1000 || ms < math.MinInt64/1000 {
			return 0, fmt.Errorf("%d ms is out of range for microseconds", ms)
		}
		return ms * 1000, nil
	}
	if ms > math.MaxInt64/1_000_000 || ms < math.MinInt64/1_000_000 {
		return 0, fmt.Errorf("%d ms is out of range for nanoseconds", ms)
	}
	return ms * 1_000_000, nil
}

var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return
}()

// parseDecimal reads [-]digits[.digits]; values with up to 18 significant
// digits (the common case) take an int64 path, others decimal128.FromString.
func parseDecimal(b []byte, prec, scale int32) (decimal128.Num, error) {
	i, neg := 0, false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	intStart := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(b) && b[i] == '.' {
		i++
		fracStart = i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		fracEnd = i
	}
	nInt, nFrac := intEnd-intStart, fracEnd-fracStart
	if i == len(b) && nFrac > int(scale) {
		return decimal128.Num{}, fmt.Errorf("more than %d decimal places", scale)
	}
	if i == len(b) && nInt+nFrac > 0 && nFrac <= int(scale) && scale >= 0 && nInt+int(scale) <= 18 {
		var v int64
		for _, c := range b[intStart:intEnd] {
			v = v*10 + int64(c-'0')
		}
		for _, c := range b[fracStart:fracEnd] {
			v = v*10 + int64(c-'0')
		}
		v *= pow10[int(scale)-nFrac]
		if prec <= 18 && v >= pow10[prec] {
			return decimal128.Num{}, errors.New("value exceeds the precision")
		}
		if neg {
			v = -v
		}
		return decimal128.FromI64(v), nil
	}
	n, err := decimal128.FromString(string(b), prec, scale)
	if err != nil {
		return n, err
	}
	if !n.FitsInPrecision(prec) {
		return n, errors.New("value exceeds the precision")
	}
	return n, nil
}

func skipWS(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

func syntaxErr(data []byte, p int, want string) error {
	if p >= len(data) {
		return fmt.Errorf("malformed JSON: want %s, got end of value", want)
	}
	return fmt.Errorf("malformed JSON: want %s at byte %d, got %q", want, p, data[p])
}

func literal(data []byte, p int, lit string) (int, error) {
	if len(data)-p < len(lit) || string(data[p:p+len(lit)]) != lit {
		return 0, syntaxErr(data, p, lit)
	}
	return p + len(lit), nil
}

// number returns the JSON number token at p.
func number(data []byte, p int) ([]byte, int, error) {
	start := p
	if p < len(data) && data[p] == '-' {
		p++
	}
	digits := p
	for p < len(data) && data[p] >= '0' && data[p] <= '9' {
		p++
	}
	if p == digits || (data[digits] == '0' && p-digits > 1) {
		return nil, 0, syntaxErr(data, start, "a number")
	}
	if p < len(data) && data[p] == '.' {
		p++
		d := p
		for p < len(data) && data[p] >= '0' && data[p] <= '9' {
			p++
		}
		if p == d {
			return nil, 0, syntaxErr(data, p, "a digit")
		}
	}
	if p < len(data) && (data[p] == 'e' || data[p] == 'E') {
		p++
		if p < len(data) && (data[p] == '+' || data[p] == '-') {
			p++
		}
		d := p
		for p < len(data) && data[p] >= '0' && data[p] <= '9' {
			p++
		}
		if p == d {
			return nil, 0, syntaxErr(data, p, "a digit")
		}
	}
	return data[start:p], p, nil
}

// readString returns the contents of the JSON string at p: a sub-slice of
// data when it has no escapes, else the unescaped bytes in *buf.
func readString(data []byte, p int, buf *[]byte) ([]byte, int, error) {
	if p >= len(data) || data[p] != '"' {
		return nil, 0, syntaxErr(data, p, "a string")
	}
	p++
	start := p
	for p < len(data) {
		c := data[p]
		if c == '"' {
			s := data[start:p]
			if !utf8.Valid(s) {
				return nil, 0, fmt.Errorf("malformed JSON: string at byte %d is not valid UTF-8", start)
			}
			return s, p + 1, nil
		}
		if c == '\\' {
			return unescape(data, start, p, buf)
		}
		if c < 0x20 {
			return nil, 0, fmt.Errorf("malformed JSON: control character in string at byte %d", p)
		}
		p++
	}
	return nil, 0, syntaxErr(data, p, "'\"'")
}

func unescape(data []byte, start, p int, buf *[]byte) ([]byte, int, error) {
	out := append((*buf)[:0], data[start:p]...)
	for p < len(data) {
		c := data[p]
		switch {
		case c == '"':
			*buf = out
			if !utf8.Valid(out) {
				return nil, 0, fmt.Errorf("malformed JSON: string at byte %d is not valid UTF-8", start)
			}
			return out, p + 1, nil
		case c < 0x20:
			return nil, 0, fmt.Errorf("malformed JSON: control character in string at byte %d", p)
		case c != '\\':
			out = append(out, c)
			p++
			continue
		}
		p++
		if p >= len(data) {
			break
		}
		switch data[p] {
		case '"', '\\', '/':
			out = append(out, data[p])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, np, ok := hex4(data, p+1)
			if !ok {
				return nil, 0, syntaxErr(data, p, "four hex digits")
			}
			p = np - 1
			if utf16.IsSurrogate(r) {
				if r2, np2, ok := hex4(data, np+2); ok && np+1 < len(data) && data[np] == '\\' && data[np+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, p = d, np2-1
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, 0, syntaxErr(data, p, "an escape character")
		}
		p++
	}
	return nil, 0, syntaxErr(data, p, "'\"'")
}

func hex4(data []byte, p int) (rune, int, bool) {
	if p+4 > len(data) {
		return 0, 0, false
	}
	var r rune
	for _, c := range data[p : p+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0, false
		}
	}
	return r, p + 4, true
}

const maxDepth = 512

// skipValue skips the JSON value at p (of an unknown field).
func skipValue(data []byte, p, depth int) (int, error) {
	if depth > maxDepth {
		return 0, errors.New("malformed JSON: nested too deep")
	}
	if p >= len(data) {
		return 0, syntaxErr(data, p, "a value")
	}
	var scratch []byte
	switch c := data[p]; {
	case c == '"':
		_, np, err := readString(data, p, &scratch)
		return np, err
	case c == 't':
		return literal(data, p, "true")
	case c == 'f':
		return literal(data, p, "false")
	case c == 'n':
		return literal(data, p, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		_, np, err := number(data, p)
		return np, err
	case c == '[' || c == '{':
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		p = skipWS(data, p+1)
		if p < len(data) && data[p] == end {
			return p + 1, nil
		}
		for {
			var err error
			if c == '{' {
				if _, p, err = readString(data, p, &scratch); err != nil {
					return 0, err
				}
				p = skipWS(data, p)
				if p >= len(data) || data[p] != ':' {
					return 0, syntaxErr(data, p, "':'")
				}
				p = skipWS(data, p+1)
			}
			if p, err = skipValue(data, p, depth+1); err != nil {
				return 0, err
			}
			p = skipWS(data, p)
			if p < len(data) && data[p] == ',' {
				p = skipWS(data, p+1)
				continue
			}
			if p < len(data) && data[p] == end {
				return p + 1, nil
			}
			return 0, syntaxErr(data, p, fmt.Sprintf("',' or %q", end))
		}
	}
	return 0, syntaxErr(data, p, "a value")
}
