package shards

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"

	"github.com/kediff/kediff/internal/duckdbtest"
)

// testJPEG encodes a w×h JPEG whose colour depends on seed.
func testJPEG(t testing.TB, w, h, seed int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(seed * 40), uint8(x * 8), uint8(y * 8), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testRows(t testing.TB, n int) []Row {
	rows := make([]Row, n)
	for i := range rows {
		img := testJPEG(t, 16+i, 8+i, i)
		sum := sha256.Sum256(img)
		key := fmt.Sprintf("%09d", i)
		rows[i] = Row{
			Key:            key,
			Caption:        fmt.Sprintf("a photo number %d, naïve café", i),
			Prompt:         fmt.Sprintf("photo %d", i),
			PromptSource:   "caption",
			Image:          &Image{Bytes: img, Path: key + ".jpg"},
			Width:          int32(16 + i),
			Height:         int32(8 + i),
			OriginalWidth:  int32(32 + i),
			OriginalHeight: int32(16 + i),
			SHA256:         hex.EncodeToString(sum[:]),
			Source:         "file:///in/00000.tar#" + key + ".jpg",
		}
		if i%2 == 0 {
			rows[i].Meta = fmt.Sprintf(`{"url":"http://example.com/%d.jpg"}`, i)
		}
	}
	rows[1].Caption = "" // an empty caption stays "", not null
	return rows
}

func testRejects() []Reject {
	return []Reject{
		{Key: "000000005", Index: 5, Source: "file:///in/00000.tar#000000005.txt", Stage: "read",
			Reason: string(ReasonNoImage), Detail: "no image member", Caption: "lonely caption"},
		{Key: "000000006", Index: 6, Source: "file:///in/00000.tar#000000006.jpg", Stage: "image",
			Reason: "decode_failed", Detail: "jpeg: bad header", Caption: strings.Repeat("é", 600) + "\xff"},
	}
}

var testMeta = Metadata{Version: "v0.0.0-test", Config: []byte(`{"resize":256}`), Input: "file:///in/00000.tar"}

var testStart = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// writeShard writes rows and rejects as shard id and closes it.
func writeShard(t testing.TB, out *blob.Bucket, id string, rows []Row, rejects []Reject, opt WriterOptions) {
	t.Helper()
	ctx := context.Background()
	w, err := NewShardWriter(ctx, out, id, testMeta, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if err := w.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rejects {
		if err := w.WriteReject(&rejects[i]); err != nil {
			t.Fatal(err)
		}
	}
	err = w.Close(Stats{Input: testMeta.Input, Read: int64(len(rows) + len(rejects)),
		Started: testStart, Finished: testStart.Add(2 * time.Second),
		Version: testMeta.Version, ConfigHash: ConfigHash(testMeta.Config)})
	if err != nil {
		t.Fatal(err)
	}
}

func openTestDir(t testing.TB) (string, *blob.Bucket) {
	t.Helper()
	dir := t.TempDir()
	b, err := OpenDir(context.Background(), dir, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return dir, b
}

func TestShardWriterDuckDB(t *testing.T) {
	duckdbtest.Require(t)
	dir, out := openTestDir(t)
	rows, rejects := testRows(t, 5), testRejects()
	writeShard(t, out, "00000", rows, rejects, WriterOptions{RowGroupRows: 2})
	file := duckdbtest.Quote(filepath.Join(dir, "00000.parquet"))
	rejFile := duckdbtest.Quote(filepath.Join(dir, "00000_rejects.parquet"))
	// Rows filling their last row group exactly, and a shard with no rows.
	writeShard(t, out, "00001", rows[:4], nil, WriterOptions{RowGroupRows: 2})
	writeShard(t, out, "00002", nil, rejects, WriterOptions{})
	file1 := duckdbtest.Quote(filepath.Join(dir, "00001.parquet"))
	file2 := duckdbtest.Quote(filepath.Join(dir, "00002.parquet"))
	rej1 := duckdbtest.Quote(filepath.Join(dir, "00001_rejects.parquet"))

	res := duckdbtest.QueryAll(t,
		"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "+file+")",
		"SELECT *, image.bytes AS b, image.path AS p FROM "+file,
		"SELECT count(DISTINCT row_group_id) AS groups, list(DISTINCT compression ORDER BY compression) FILTER (WHERE path_in_schema <> 'image, bytes') AS codecs, "+
			"list(DISTINCT compression) FILTER (WHERE path_in_schema = 'image, bytes') AS image_codecs FROM parquet_metadata("+file+")",
		"SELECT * FROM "+rejFile,
		"SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata("+file+") ORDER BY k",
		"SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata("+rejFile+") ORDER BY k",
		"SELECT name, repetition_type FROM parquet_schema("+file+") WHERE name IN ('image','bytes','path')",
		"SELECT (SELECT count(DISTINCT row_group_id) FROM parquet_metadata("+file1+")) AS groups1,"+
			" (SELECT count(*) FROM "+file1+") AS rows1, (SELECT count(*) FROM "+file2+") AS rows2,"+
			" (SELECT count(*) FROM "+rej1+") AS rejects1",
	)

	t.Run("exact_and_empty", func(t *testing.T) {
		got := res[7][0]
		want := map[string]any{"groups1": float64(2), "rows1": float64(4), "rows2": float64(0), "rejects1": float64(0)}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("schema", func(t *testing.T) {
		got := res[0]
		want := [][2]string{
			{"key", "VARCHAR"}, {"caption", "VARCHAR"}, {"prompt", "VARCHAR"}, {"prompt_source", "VARCHAR"},
			{"image", "STRUCT(bytes BLOB, path VARCHAR)"},
			{"width", "INTEGER"}, {"height", "INTEGER"}, {"original_width", "INTEGER"}, {"original_height", "INTEGER"},
			{"sha256", "VARCHAR"}, {"source", "VARCHAR"}, {"meta", "VARCHAR"},
			{"words", "VARCHAR[]"}, {"pos", "VARCHAR[]"}, {"pos_raw", "VARCHAR[]"}, {"keyword", "BOOLEAN[]"},
			{"text_knowledge", "BOOLEAN"}, {"special_text", "VARCHAR"},
			{"objects", `STRUCT("label" VARCHAR, label_zh VARCHAR, score FLOAT, x0 FLOAT, y0 FLOAT, x1 FLOAT, y1 FLOAT, kept BOOLEAN)[]`},
			{"visual_knowledge", "BOOLEAN"}, {"loss_mask", "BLOB"}, {"loss_mask_shape", "INTEGER[]"},
			{"generated_caption", "VARCHAR"}, {"latent", "BLOB"}, {"latent_shape", "INTEGER[]"}, {"latent_dtype", "VARCHAR"},
		}
		if len(got) != len(want) {
			t.Fatalf("got %d columns %v, want %d", len(got), got, len(want))
		}
		for i, w := range want {
			if got[i]["column_name"] != w[0] || got[i]["column_type"] != w[1] {
				t.Errorf("column %d = %v %v, want %s %s", i, got[i]["column_name"], got[i]["column_type"], w[0], w[1])
			}
		}
	})

	t.Run("rows", func(t *testing.T) {
		got := res[1]
		if len(got) != len(rows) {
			t.Fatalf("got %d rows, want %d", len(got), len(rows))
		}
		for i, r := range rows {
			g := got[i]
			b, err := hex.DecodeString(g["b"].(string))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			var meta any
			if r.Meta != "" {
				meta = r.Meta
			}
			checks := []struct {
				col       string
				got, want any
			}{
				{"key", g["key"], r.Key}, {"caption", g["caption"], r.Caption}, {"prompt", g["prompt"], r.Prompt},
				{"prompt_source", g["prompt_source"], r.PromptSource},
				{"width", g["width"], float64(r.Width)}, {"height", g["height"], float64(r.Height)},
				{"original_width", g["original_width"], float64(r.OriginalWidth)},
				{"original_height", g["original_height"], float64(r.OriginalHeight)},
				{"sha256", g["sha256"], r.SHA256}, {"sha256(image.bytes)", hex.EncodeToString(sum[:]), r.SHA256},
				{"image.path", g["p"], r.Image.Path}, {"source", g["source"], r.Source}, {"meta", g["meta"], meta},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("row %d %s = %#v, want %#v", i, c.col, c.got, c.want)
				}
			}
		}
	})

	t.Run("row_groups_zstd", func(t *testing.T) {
		got := res[2]
		if got[0]["groups"] != float64(3) {
			t.Errorf("row groups = %v, want 3 (5 rows, 2 per group)", got[0]["groups"])
		}
		if fmt.Sprint(got[0]["codecs"]) != "[ZSTD]" {
			t.Errorf("codecs = %v, want [ZSTD]", got[0]["codecs"])
		}
		// Encoded images are stored as they are: zstd would not shrink them.
		if fmt.Sprint(got[0]["image_codecs"]) != "[UNCOMPRESSED]" {
			t.Errorf("image.bytes codecs = %v, want [UNCOMPRESSED]", got[0]["image_codecs"])
		}
	})

	t.Run("rejects", func(t *testing.T) {
		got := res[3]
		if len(got) != len(rejects) {
			t.Fatalf("got %d rejects, want %d", len(got), len(rejects))
		}
		for i, r := range rejects {
			g := got[i]
			if g["key"] != r.Key || g["index"] != float64(r.Index) || g["reason"] != r.Reason ||
				g["stage"] != r.Stage || g["detail"] != r.Detail || g["source"] != r.Source {
				t.Errorf("reject %d = %v, want %+v", i, g, r)
			}
		}
		if got[0]["caption"] != "lonely caption" {
			t.Errorf("reject 0 caption = %q", got[0]["caption"])
		}
		c := got[1]["caption"].(string)
		if len(c) > MaxRejectCaption || !strings.HasPrefix(c, "éé") {
			t.Errorf("reject 1 caption: %d bytes %.20q, want <= %d bytes of é", len(c), c, MaxRejectCaption)
		}
	})

	t.Run("kv_metadata", func(t *testing.T) {
		for i, f := range []string{file, rejFile} {
			got := res[4+i]
			kv := map[string]string{}
			for _, g := range got {
				kv[g["k"].(string)] = g["v"].(string)
			}
			if kv[MetaVersion] != testMeta.Version || kv[MetaConfig] != string(testMeta.Config) || kv[MetaInput] != testMeta.Input {
				t.Errorf("%s: kediff metadata = %v", f, kv)
			}
			var hf struct {
				Info struct {
					Features map[string]json.RawMessage `json:"features"`
				} `json:"info"`
			}
			if err := json.Unmarshal([]byte(kv[MetaHuggingFace]), &hf); err != nil {
				t.Fatalf("%s: huggingface metadata: %v: %s", f, err, kv[MetaHuggingFace])
			}
			if f == file && string(hf.Info.Features["image"]) != `{"_type":"Image"}` {
				t.Errorf("huggingface image feature = %s", hf.Info.Features["image"])
			}
			if f == rejFile && string(hf.Info.Features["index"]) != `{"dtype":"int64","_type":"Value"}` {
				t.Errorf("huggingface rejects index feature = %s", hf.Info.Features["index"])
			}
		}
	})

	// Hugging Face datasets applies the Image feature only if the file's
	// Arrow field equals the feature's: nullable struct<bytes, path> with
	// nullable children.
	t.Run("image_nullable_for_datasets", func(t *testing.T) {
		got := res[6]
		if len(got) != 3 {
			t.Fatalf("got %v", got)
		}
		for _, g := range got {
			if g["repetition_type"] != "OPTIONAL" {
				t.Errorf("%v is %v, want OPTIONAL", g["name"], g["repetition_type"])
			}
		}
	})
}

func TestShardWriterDeterministic(t *testing.T) {
	rows, rejects := testRows(t, 4), testRejects()
	dirA, a := openTestDir(t)
	dirB, b := openTestDir(t)
	writeShard(t, a, "00007", rows, rejects, WriterOptions{RowGroupRows: 3})
	// A killed earlier attempt leaves older files; the rerun replaces them.
	if err := os.WriteFile(filepath.Join(dirB, "00007.parquet"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeShard(t, b, "00007", rows, rejects, WriterOptions{RowGroupRows: 3})
	for _, name := range []string{"00007.parquet", "00007_rejects.parquet"} {
		x, err := os.ReadFile(filepath.Join(dirA, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(dirB, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two writes of the same rows (%d and %d bytes)", name, len(x), len(y))
		}
	}
	entries, _ := os.ReadDir(dirB)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"00007.parquet", "00007_rejects.parquet", "00007_stats.json"}; !reflect.DeepEqual(names, want) {
		t.Errorf("files = %v, want %v", names, want)
	}
}

func TestStatsAndComplete(t *testing.T) {
	ctx := context.Background()
	dir, out := openTestDir(t)
	complete := func(id string) bool {
		t.Helper()
		ok, err := Complete(ctx, out, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if complete("00001") {
		t.Fatal("missing shard is complete")
	}
	rows, rejects := testRows(t, 3), testRejects()
	writeShard(t, out, "00001", rows, rejects, WriterOptions{})
	if !complete("00001") {
		t.Fatal("closed shard is not complete")
	}

	st, err := ReadStats(ctx, out, "00001")
	if err != nil {
		t.Fatal(err)
	}
	if st.Shard != "00001" || st.Read != 5 || st.Written != 3 || st.Rejected != 2 || st.DurationS != 2 || st.SamplesPerS != 2.5 {
		t.Errorf("stats = %+v", st)
	}
	if want := map[string]int64{"no_image": 1, "decode_failed": 1}; !reflect.DeepEqual(st.Reasons, want) {
		t.Errorf("reasons = %v, want %v", st.Reasons, want)
	}
	if want := map[string]int64{"read": 1, "image": 1}; !reflect.DeepEqual(st.ByStage, want) {
		t.Errorf("by_stage = %v, want %v", st.ByStage, want)
	}
	var imageBytes int64
	for _, r := range rows {
		imageBytes += int64(len(r.Image.Bytes))
	}
	if st.ImageBytes != imageBytes {
		t.Errorf("image_bytes = %d, want %d", st.ImageBytes, imageBytes)
	}
	for name, size := range st.Files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Size() != size {
			t.Errorf("stats file %s: size %d, stat %v %v", name, size, fi, err)
		}
	}

	t.Run("rewrite_makes_incomplete", func(t *testing.T) {
		w, err := NewShardWriter(ctx, out, "00001", testMeta, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if complete("00001") {
			t.Error("shard being rewritten is complete")
		}
		if err := w.Write(&rows[0]); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatal(err)
		}
		if complete("00001") {
			t.Error("aborted shard is complete")
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp") {
				t.Errorf("Abort left %s", e.Name())
			}
		}
	})

	t.Run("count_mismatch", func(t *testing.T) {
		w, err := NewShardWriter(ctx, out, "00002", testMeta, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&rows[0]); err != nil {
			t.Fatal(err)
		}
		err = w.Close(Stats{Read: 2})
		if err == nil || !strings.Contains(err.Error(), "read 2 samples but wrote 1 rows and 0 rejects") {
			t.Errorf("Close error = %v", err)
		}
		if complete("00002") {
			t.Error("shard with lost samples is complete")
		}
	})

	t.Run("bad_stats", func(t *testing.T) {
		writeShard(t, out, "00003", rows, nil, WriterOptions{})
		if err := os.WriteFile(filepath.Join(dir, "00003_stats.json"), []byte(`{"shard":`), 0o644); err != nil {
			t.Fatal(err)
		}
		if complete("00003") {
			t.Error("shard with truncated stats is complete")
		}
		writeShard(t, out, "00004", rows, nil, WriterOptions{})
		if err := os.WriteFile(filepath.Join(dir, "00004.parquet"), []byte("PAR1"), 0o644); err != nil {
			t.Fatal(err)
		}
		if complete("00004") {
			t.Error("shard whose parquet file changed size is complete")
		}
	})

	t.Run("mem_bucket", func(t *testing.T) {
		mem := memblob.OpenBucket(nil)
		defer mem.Close()
		writeShard(t, mem, "00000", rows, rejects, WriterOptions{})
		ok, err := Complete(ctx, mem, "00000")
		if err != nil || !ok {
			t.Errorf("Complete on mem bucket = %v, %v", ok, err)
		}
	})
}

func TestShardWriterRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	_, out := openTestDir(t)
	if _, err := NewShardWriter(ctx, out, "00000", Metadata{Config: []byte("{")}, WriterOptions{}); err == nil {
		t.Error("config that is not JSON accepted")
	}
	w, err := NewShardWriter(ctx, out, "00000", testMeta, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if err := w.Write(&Row{Key: "k", Caption: "bad \xff"}); !errors.Is(err, ErrInvalidUTF8) || !strings.Contains(err.Error(), "caption is not valid UTF-8") {
		t.Errorf("invalid UTF-8 caption: err = %v", err)
	}
	if err := w.Write(&Row{}); err == nil {
		t.Error("row without key accepted")
	}
	if err := w.WriteReject(&Reject{Key: "k"}); err == nil {
		t.Error("reject without reason accepted")
	}
}

func TestCleanCaption(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 10, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is 2 bytes: do not cut it in half
		{"a\xffb", 10, "a\uFFFDb"},
		{"", 5, ""},
	} {
		if got := cleanCaption(tc.in, tc.max); got != tc.want {
			t.Errorf("cleanCaption(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestHFFeatures(t *testing.T) {
	got, err := HFFeatures(Row{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":{"dtype":"string","_type":"Value"},"caption":{"dtype":"string","_type":"Value"},` +
		`"prompt":{"dtype":"string","_type":"Value"},"prompt_source":{"dtype":"string","_type":"Value"},` +
		`"image":{"_type":"Image"},` +
		`"width":{"dtype":"int32","_type":"Value"},"height":{"dtype":"int32","_type":"Value"},` +
		`"original_width":{"dtype":"int32","_type":"Value"},"original_height":{"dtype":"int32","_type":"Value"},` +
		`"sha256":{"dtype":"string","_type":"Value"},"source":{"dtype":"string","_type":"Value"},` +
		`"meta":{"dtype":"string","_type":"Value"},` +
		`"words":{"feature":{"dtype":"string","_type":"Value"},"_type":"Sequence"},` +
		`"pos":{"feature":{"dtype":"string","_type":"Value"},"_type":"Sequence"},` +
		`"pos_raw":{"feature":{"dtype":"string","_type":"Value"},"_type":"Sequence"},` +
		`"keyword":{"feature":{"dtype":"bool","_type":"Value"},"_type":"Sequence"},` +
		`"text_knowledge":{"dtype":"bool","_type":"Value"},"special_text":{"dtype":"string","_type":"Value"},` +
		`"objects":[{"label":{"dtype":"string","_type":"Value"},"label_zh":{"dtype":"string","_type":"Value"},` +
		`"score":{"dtype":"float32","_type":"Value"},"x0":{"dtype":"float32","_type":"Value"},"y0":{"dtype":"float32","_type":"Value"},` +
		`"x1":{"dtype":"float32","_type":"Value"},"y1":{"dtype":"float32","_type":"Value"},"kept":{"dtype":"bool","_type":"Value"}}],` +
		`"visual_knowledge":{"dtype":"bool","_type":"Value"},"loss_mask":{"dtype":"binary","_type":"Value"},` +
		`"loss_mask_shape":{"feature":{"dtype":"int32","_type":"Value"},"_type":"Sequence"},` +
		`"generated_caption":{"dtype":"string","_type":"Value"},"latent":{"dtype":"binary","_type":"Value"},` +
		`"latent_shape":{"feature":{"dtype":"int32","_type":"Value"},"_type":"Sequence"},"latent_dtype":{"dtype":"string","_type":"Value"}}`
	if string(got) != want {
		t.Errorf("features:\n got %s\nwant %s", got, want)
	}
	// Types that later columns will use.
	type obj struct {
		Label string  `parquet:"label"`
		Score float32 `parquet:"score"`
		Kept  bool    `parquet:"kept"`
	}
	type later struct {
		Words   []string  `parquet:"words,list"`
		Keyword []bool    `parquet:"keyword,list"`
		Objects []obj     `parquet:"objects,list"`
		Latent  []float32 `parquet:"latent,list"`
		Shape   []int64   `parquet:"latent_shape,list"`
		Blob    []byte    `parquet:"blob"`
		Skip    int       `parquet:"-"`
	}
	got, err = HFFeatures(later{})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"words":{"feature":{"dtype":"string","_type":"Value"},"_type":"Sequence"},` +
		`"keyword":{"feature":{"dtype":"bool","_type":"Value"},"_type":"Sequence"},` +
		`"objects":[{"label":{"dtype":"string","_type":"Value"},"score":{"dtype":"float32","_type":"Value"},"kept":{"dtype":"bool","_type":"Value"}}],` +
		`"latent":{"feature":{"dtype":"float32","_type":"Value"},"_type":"Sequence"},` +
		`"latent_shape":{"feature":{"dtype":"int64","_type":"Value"},"_type":"Sequence"},` +
		`"blob":{"dtype":"binary","_type":"Value"}}`
	if string(got) != want {
		t.Errorf("features of later columns:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(got) {
		t.Error("not JSON")
	}
	if _, err := HFFeatures(struct {
		M map[string]int `parquet:"m"`
	}{}); err == nil {
		t.Error("map column accepted")
	}
}

func TestWriteManifest(t *testing.T) {
	ctx := context.Background()
	dir, out := openTestDir(t)
	rows, rejects := testRows(t, 3), testRejects()
	writeShard(t, out, "00001", rows, rejects, WriterOptions{})
	writeShard(t, out, "00000", rows[:2], nil, WriterOptions{})
	// 00002 was killed after its parquet file but before its stats.
	writeShard(t, out, "00002", rows, nil, WriterOptions{})
	if err := out.Delete(ctx, StatsName("00002")); err != nil {
		t.Fatal(err)
	}

	m, err := WriteManifest(ctx, out, testMeta)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range m.Shards {
		ids = append(ids, s.ID)
	}
	if !sort.StringsAreSorted(ids) || !reflect.DeepEqual(ids, []string{"00000", "00001"}) {
		t.Errorf("shards = %v, want [00000 00001]", ids)
	}
	if !reflect.DeepEqual(m.Incomplete, []string{"00002"}) {
		t.Errorf("incomplete = %v, want [00002]", m.Incomplete)
	}
	if m.Totals.Shards != 2 || m.Totals.Rows != 5 || m.Totals.Rejects != 2 || m.Totals.Read != 7 {
		t.Errorf("totals = %+v", m.Totals)
	}
	if m.Shards[1].Files["00001.parquet"] == 0 || m.Shards[1].Stats != "00001_stats.json" {
		t.Errorf("shard 00001 = %+v", m.Shards[1])
	}
	if m.Columns[4] != (Column{Name: "image", Type: "struct<bytes: binary, path: string>", Nullable: true}) ||
		m.Columns[5] != (Column{Name: "width", Type: "int32"}) {
		t.Errorf("columns = %+v", m.Columns)
	}
	if string(m.Config) != string(testMeta.Config) || m.Version != testMeta.Version {
		t.Errorf("config %s version %s", m.Config, m.Version)
	}
	first, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteManifest(ctx, out, testMeta); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if !bytes.Equal(first, second) {
		t.Error("manifest changed when written again")
	}
	var back Manifest
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
}
