package delta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"sort"

	pq "github.com/parquet-go/parquet-go"
)

// A checkpoint row: one action, the others null (the layout Spark and
// delta-rs write and read, column names as in the JSON actions).
type cpRow struct {
	Txn      *cpTxn      `parquet:"txn,optional"`
	Add      *cpAdd      `parquet:"add,optional"`
	Remove   *cpRemove   `parquet:"remove,optional"`
	MetaData *cpMeta     `parquet:"metaData,optional"`
	Protocol *cpProtocol `parquet:"protocol,optional"`
}

type cpTxn struct {
	AppID       string `parquet:"appId"`
	Version     int64  `parquet:"version"`
	LastUpdated *int64 `parquet:"lastUpdated,optional"`
}

type cpAdd struct {
	Path             string             `parquet:"path"`
	PartitionValues  map[string]*string `parquet:"partitionValues"`
	Size             int64              `parquet:"size"`
	ModificationTime int64              `parquet:"modificationTime"`
	DataChange       bool               `parquet:"dataChange"`
	Stats            *string            `parquet:"stats,optional"`
}

type cpRemove struct {
	Path              string `parquet:"path"`
	DeletionTimestamp *int64 `parquet:"deletionTimestamp,optional"`
	DataChange        bool   `parquet:"dataChange"`
}

type cpFormat struct {
	Provider string            `parquet:"provider"`
	Options  map[string]string `parquet:"options"`
}

type cpMeta struct {
	ID               string            `parquet:"id"`
	Name             *string           `parquet:"name,optional"`
	Description      *string           `parquet:"description,optional"`
	Format           cpFormat          `parquet:"format"`
	SchemaString     string            `parquet:"schemaString"`
	PartitionColumns []string          `parquet:"partitionColumns,list"`
	Configuration    map[string]string `parquet:"configuration"`
	CreatedTime      *int64            `parquet:"createdTime,optional"`
}

type cpProtocol struct {
	MinReaderVersion int32    `parquet:"minReaderVersion"`
	MinWriterVersion int32    `parquet:"minWriterVersion"`
	ReaderFeatures   []string `parquet:"readerFeatures,list,optional"`
	WriterFeatures   []string `parquet:"writerFeatures,list,optional"`
}

type lastCheckpoint struct {
	Version     int64 `json:"version"`
	Size        int64 `json:"size"`
	SizeInBytes int64 `json:"sizeInBytes"`
}

// WriteCheckpoint writes s as the checkpoint of s.Version, then points
// _last_checkpoint at it. Removes are not kept (sluice appends only, so a
// table it wrote has none; a remove read from another writer's log is
// dropped, which only shortens how long VACUUM must keep that file).
func (t *Table) WriteCheckpoint(s *Snapshot) error {
	name := path.Join(LogDir, CheckpointName(s.Version))
	rows := make([]cpRow, 0, len(s.Files)+len(s.Txns)+2)
	p := s.Protocol
	rows = append(rows, cpRow{Protocol: &cpProtocol{
		MinReaderVersion: int32(p.MinReaderVersion), MinWriterVersion: int32(p.MinWriterVersion),
		ReaderFeatures: p.ReaderFeatures, WriterFeatures: p.WriterFeatures,
	}})
	m := s.Metadata
	opts := m.Format.Options
	if opts == nil {
		opts = map[string]string{}
	}
	conf := m.Configuration
	if conf == nil {
		conf = map[string]string{}
	}
	rows = append(rows, cpRow{MetaData: &cpMeta{
		ID: m.ID, Name: m.Name, Description: m.Description, Format: cpFormat{Provider: m.Format.Provider, Options: opts},
		SchemaString: m.SchemaString, PartitionColumns: m.PartitionColumns, Configuration: conf, CreatedTime: m.CreatedTime,
	}})
	apps := make([]string, 0, len(s.Txns))
	for a := range s.Txns {
		apps = append(apps, a)
	}
	sort.Strings(apps)
	for _, a := range apps {
		rows = append(rows, cpRow{Txn: &cpTxn{AppID: a, Version: s.Txns[a]}})
	}
	for _, a := range s.SortedFiles() {
		ca := &cpAdd{Path: a.Path, PartitionValues: a.PartitionValues, Size: a.Size, ModificationTime: a.ModificationTime, DataChange: false}
		if ca.PartitionValues == nil {
			ca.PartitionValues = map[string]*string{}
		}
		if a.Stats != "" {
			st := a.Stats
			ca.Stats = &st
		}
		rows = append(rows, cpRow{Add: ca})
	}
	var buf bytes.Buffer
	w := pq.NewGenericWriter[cpRow](&buf, pq.Compression(&pq.Snappy), pq.DataPageVersion(1))
	if _, err := w.Write(rows); err != nil {
		return fmt.Errorf("delta: table %s: write checkpoint %s: %w", t.root, name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("delta: table %s: write checkpoint %s: %w", t.root, name, err)
	}
	size := int64(buf.Len())
	if err := t.fs.WriteFileAtomic(t.logPath(CheckpointName(s.Version)), buf.Bytes()); err != nil {
		return fmt.Errorf("delta: table %s: write checkpoint %s: %w", t.root, name, err)
	}
	lc, _ := json.Marshal(lastCheckpoint{Version: s.Version, Size: int64(len(rows)), SizeInBytes: size})
	if err := t.fs.WriteFileAtomic(t.logPath(lastCheckpointFile), lc); err != nil {
		return fmt.Errorf("delta: table %s: write %s: %w", t.root, path.Join(LogDir, lastCheckpointFile), err)
	}
	return nil
}

// readCheckpoint replays the rows of checkpoint v (its parts in order) into s.
func (t *Table) readCheckpoint(s *Snapshot, v int64, parts []string) error {
	for _, part := range parts {
		name := path.Join(LogDir, part)
		b, err := t.fs.ReadFile(t.logPath(part))
		if err != nil {
			return fmt.Errorf("%w: table %s: checkpoint of version %d: read %s: %v", ErrCorrupt, t.root, v, name, err)
		}
		if err := readCheckpointRows(b, func(a *Action) error { return s.apply(a, name) }); err != nil {
			return fmt.Errorf("%w: table %s: checkpoint of version %d: %s: %v", ErrCorrupt, t.root, v, name, err)
		}
	}
	return nil
}

// readCheckpointRows decodes a checkpoint Parquet file row by row as
// generic maps, so that whatever layout its writer chose (extra columns,
// list and map spellings) the actions come out by name.
func readCheckpointRows(b []byte, fn func(*Action) error) (err error) {
	defer func() {
		if r := recover(); r != nil { // parquet-go panics on some corrupt input
			err = fmt.Errorf("corrupt parquet: %v", r)
		}
	}()
	f, err := pq.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return err
	}
	r := pq.NewReader(f)
	defer r.Close()
	for i := int64(0); i < f.NumRows(); i++ {
		row := map[string]any{}
		if err := r.Read(&row); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		a, err := actionOf(row)
		if err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		if a != nil {
			if err := fn(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// actionOf turns a generic checkpoint row into an Action by a JSON round
// trip of its one non-null known column (nil for a row of another action).
func actionOf(row map[string]any) (*Action, error) {
	for _, k := range []string{"add", "remove", "metaData", "protocol", "txn"} {
		v, ok := row[k]
		if !ok || v == nil {
			continue
		}
		if m, isMap := v.(map[string]any); isMap && len(m) == 0 {
			continue
		}
		v = normalize(v)
		b, err := json.Marshal(map[string]any{k: v})
		if err != nil {
			return nil, err
		}
		var a Action
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		if a.Add != nil && a.Add.Path == "" || a.Remove != nil && a.Remove.Path == "" || a.Txn != nil && a.Txn.AppID == "" {
			continue // a null struct read back as zero values
		}
		return &a, nil
	}
	return nil, nil
}

// normalize rewrites the generic values of a row into JSON-friendly ones:
// LIST groups ({list: [{element: x}]}) become arrays, byte strings strings.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if l, ok := x["list"]; ok && len(x) == 1 {
			if items, ok := l.([]any); ok {
				out := make([]any, len(items))
				for i, it := range items {
					if m, ok := it.(map[string]any); ok && len(m) == 1 {
						for _, e := range m {
							it = e
						}
					}
					out[i] = normalize(it)
				}
				return out
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(normalize(k))] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []byte:
		return string(x)
	case nil:
		return nil
	}
	// Maps and pointers of other static types (map[string][]byte, *[]byte).
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[fmt.Sprint(normalize(it.Key().Interface()))] = normalize(it.Value().Interface())
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return normalize(rv.Elem().Interface())
	case reflect.Slice:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	}
	return v
}
