package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The inline form of a task's encoded records, which a remote writer puts
// in its commit message (base64 in the JSON) for the driver's Sink to
// produce: what a parked record holds, no more (topic and partition are
// left to the driver's producer, as for parked records).
//
//	version  byte (1)
//	count    uvarint
//	count × record:
//	    key      varint length (-1: null) + bytes
//	    value    varint length (-1: null) + bytes
//	    headers  uvarint count, each: uvarint key length + key,
//	             varint value length (-1: null) + value
const inlineVersion = 1

// appendInline appends the inline form of recs to dst.
func appendInline(dst []byte, recs []*kgo.Record) []byte {
	bytesOf := func(dst, b []byte) []byte {
		if b == nil {
			return binary.AppendVarint(dst, -1)
		}
		return append(binary.AppendVarint(dst, int64(len(b))), b...)
	}
	dst = append(dst, inlineVersion)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	for _, r := range recs {
		dst = bytesOf(dst, r.Key)
		dst = bytesOf(dst, r.Value)
		dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
		for _, h := range r.Headers {
			dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = bytesOf(dst, h.Value)
		}
	}
	return dst
}

// inlineSize is len(appendInline(nil, recs)) without encoding, so the
// buffer is allocated once.
func inlineSize(recs []*kgo.Record) int {
	n := 1 + binary.MaxVarintLen64
	for _, r := range recs {
		n += 3*binary.MaxVarintLen64 + len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
		}
	}
	return n
}

var errTruncated = errors.New("truncated")

// parseInline decodes the inline form; keys and values alias b, which the
// caller must not change afterwards.
func parseInline(b []byte) ([]*kgo.Record, error) {
	if len(b) == 0 || b[0] != inlineVersion {
		return nil, fmt.Errorf("records: not version %d of the inline form", inlineVersion)
	}
	pos := 1
	uvarint := func() (uint64, error) {
		v, n := binary.Uvarint(b[pos:])
		if n <= 0 {
			return 0, errTruncated
		}
		pos += n
		return v, nil
	}
	bytesOf := func() ([]byte, error) {
		l, n := binary.Varint(b[pos:])
		if n <= 0 || l < -1 {
			return nil, errTruncated
		}
		pos += n
		if l == -1 {
			return nil, nil
		}
		if l > int64(len(b)-pos) {
			return nil, errTruncated
		}
		v := b[pos : pos+int(l) : pos+int(l)]
		pos += int(l)
		return v, nil
	}
	count, err := uvarint()
	// Every record takes at least 3 bytes: a count past that is corrupt,
	// and must not size an allocation.
	if err != nil || count > uint64(len(b)-pos)/3 {
		return nil, fmt.Errorf("records: count %d in %d bytes: %w", count, len(b), errTruncated)
	}
	recs := make([]kgo.Record, count)
	out := make([]*kgo.Record, count)
	for i := range recs {
		r := &recs[i]
		if r.Key, err = bytesOf(); err != nil {
			return nil, fmt.Errorf("record %d: key: %w", i, err)
		}
		if r.Value, err = bytesOf(); err != nil {
			return nil, fmt.Errorf("record %d: value: %w", i, err)
		}
		nh, err := uvarint()
		if err != nil || nh > uint64(len(b)-pos)/2 {
			return nil, fmt.Errorf("record %d: headers: %w", i, errTruncated)
		}
		if nh > 0 {
			r.Headers = make([]kgo.RecordHeader, nh)
		}
		for j := range r.Headers {
			kl, err := uvarint()
			if err != nil || kl > uint64(len(b)-pos) {
				return nil, fmt.Errorf("record %d: header %d key: %w", i, j, errTruncated)
			}
			r.Headers[j].Key = string(b[pos : pos+int(kl)])
			pos += int(kl)
			if r.Headers[j].Value, err = bytesOf(); err != nil {
				return nil, fmt.Errorf("record %d: header %d value: %w", i, j, err)
			}
		}
		out[i] = r
	}
	if pos != len(b) {
		return nil, fmt.Errorf("records: %d bytes after the last of %d records", len(b)-pos, count)
	}
	return out, nil
}
