package shards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"gocloud.dev/blob"
)

// ManifestName is the dataset manifest's file name in the output folder.
const ManifestName = "manifest.json"

// Manifest is manifest.json: the dataset's table of contents, built from the
// complete shards' stats files. Only complete shards are listed; shards with a
// Parquet file but no stats are named under Incomplete.
type Manifest struct {
	Version    string          `json:"version"`
	Config     json.RawMessage `json:"config"`
	ConfigHash string          `json:"config_hash"`

	Shards     []ManifestShard `json:"shards"`
	Incomplete []string        `json:"incomplete"`
	Totals     Totals          `json:"totals"`

	// Columns of NNNNN.parquet and NNNNN_rejects.parquet, in file order.
	Columns       []Column `json:"columns"`
	RejectColumns []Column `json:"reject_columns"`
	// Features is the Hugging Face features object of NNNNN.parquet.
	Features json.RawMessage `json:"features"`
}

// ManifestShard is one complete shard in the manifest.
type ManifestShard struct {
	ID         string           `json:"id"`
	Input      string           `json:"input"`
	Read       int64            `json:"read"`
	Rows       int64            `json:"rows"`
	Rejects    int64            `json:"rejects"`
	Files      map[string]int64 `json:"files"` // name -> bytes
	Stats      string           `json:"stats"` // the stats file name
	Version    string           `json:"version"`
	ConfigHash string           `json:"config_hash"`
}

// Totals add up the complete shards.
type Totals struct {
	Shards     int              `json:"shards"`
	Read       int64            `json:"read"`
	Rows       int64            `json:"rows"`
	Rejects    int64            `json:"rejects"`
	ImageBytes int64            `json:"image_bytes"`
	Reasons    map[string]int64 `json:"reasons"`
	DurationS  float64          `json:"duration_s"` // sum over shards (CPU-side work, not wall time)
	// Object-store faults survived while reading the shards (Stats.Retries,
	// Resumes, RetryReasons summed).
	Retries      int64            `json:"retries"`
	Resumes      int64            `json:"resumes"`
	RetryReasons map[string]int64 `json:"retry_reasons"`
}

// Column is one column of a shard file: its name and Arrow-style type
// ("string", "int32", "struct<bytes: binary, path: string>", "list<string>").
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// Columns lists the Parquet columns of row type v (Row{} or Reject{}).
func Columns(v any) []Column {
	t := reflect.TypeOf(v)
	var cols []Column
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := parquetName(f)
		if !ok {
			continue
		}
		cols = append(cols, Column{Name: name, Type: arrowType(f.Type),
			Nullable: strings.Contains(f.Tag.Get("parquet"), ",optional")})
	}
	return cols
}

func arrowType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if d := hfDtype(t); d != "" {
		return d
	}
	switch t.Kind() {
	case reflect.Struct:
		var parts []string
		for _, c := range Columns(reflect.New(t).Elem().Interface()) {
			parts = append(parts, c.Name+": "+c.Type)
		}
		return "struct<" + strings.Join(parts, ", ") + ">"
	case reflect.Slice, reflect.Array:
		return "list<" + arrowType(t.Elem()) + ">"
	}
	return t.String()
}

// WriteManifest lists the shards in out, reads every NNNNN_stats.json and
// writes manifest.json (replacing any older one) with md's version and config.
// It writes the same manifest for the same shards, so it is safe to call again
// and from several workers at once (the last write wins, and all agree).
func WriteManifest(ctx context.Context, out *blob.Bucket, md Metadata) (Manifest, error) {
	m := Manifest{
		Version:       md.Version,
		Config:        json.RawMessage("null"),
		ConfigHash:    ConfigHash(md.Config),
		Shards:        []ManifestShard{},
		Incomplete:    []string{},
		Totals:        Totals{Reasons: map[string]int64{}, RetryReasons: map[string]int64{}},
		Columns:       Columns(Row{}),
		RejectColumns: Columns(Reject{}),
	}
	if len(md.Config) > 0 {
		if !json.Valid(md.Config) {
			return m, fmt.Errorf("shards: manifest: config is not valid JSON")
		}
		m.Config = json.RawMessage(md.Config)
	}
	f, err := HFFeatures(Row{})
	if err != nil {
		return m, err
	}
	m.Features = f

	var statIDs, parquetIDs []string
	it := out.List(&blob.ListOptions{Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, fmt.Errorf("shards: manifest: list output: %w", err)
		}
		switch name := obj.Key; {
		case obj.IsDir:
		case strings.HasSuffix(name, StatsSuffix):
			statIDs = append(statIDs, strings.TrimSuffix(name, StatsSuffix))
		case strings.HasSuffix(name, "_rejects.parquet"):
		case strings.HasSuffix(name, ".parquet"):
			parquetIDs = append(parquetIDs, strings.TrimSuffix(name, ".parquet"))
		}
	}
	sort.Strings(statIDs)
	done := map[string]bool{}
	for _, id := range statIDs {
		st, err := ReadStats(ctx, out, id)
		if err != nil {
			return m, fmt.Errorf("shards: manifest: %w", err)
		}
		done[id] = true
		m.Shards = append(m.Shards, ManifestShard{
			ID: id, Input: RedactURL(st.Input), Read: st.Read, Rows: st.Written, Rejects: st.Rejected,
			Files: st.Files, Stats: StatsName(id), Version: st.Version, ConfigHash: st.ConfigHash,
		})
		t := &m.Totals
		t.Shards++
		t.Read += st.Read
		t.Rows += st.Written
		t.Rejects += st.Rejected
		t.ImageBytes += st.ImageBytes
		t.DurationS += st.DurationS
		for r, n := range st.Reasons {
			t.Reasons[r] += n
		}
		t.Retries += st.Retries
		t.Resumes += st.Resumes
		for r, n := range st.RetryReasons {
			t.RetryReasons[r] += n
		}
	}
	sort.Strings(parquetIDs)
	for _, id := range parquetIDs {
		if !done[id] {
			m.Incomplete = append(m.Incomplete, id)
		}
	}

	data, err := encodeJSON(&m)
	if err != nil {
		return m, fmt.Errorf("shards: manifest: encode: %w", err)
	}
	if err := writeWhole(ctx, out, ManifestName, data, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return m, fmt.Errorf("shards: write %s: %w", ManifestName, err)
	}
	return m, nil
}
