package pipelines

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/duckdbtest"
	"github.com/kediff/kediff/internal/s3test"
	"github.com/kediff/kediff/shards"
)

// tarMembers reads a tar's members by name.
func tarMembers(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

// The shards open in DuckDB with the documented schema, and the values are
// the input's: captions, original-image hashes, decodable 64x64 JPEGs.
func TestOutputReadsInDuckDB(t *testing.T) {
	duckdbtest.Require(t)
	in := makeSample(t, 12, 6)
	out := filepath.Join(t.TempDir(), "out")
	sum := preprocess(t, in, out, testConfig(), Split{0, 1})

	glob := duckdbtest.Quote(filepath.Join(out, "0*[0-9].parquet"))
	cols, _ := duckdbtest.QueryTypes(t, "SELECT * FROM read_parquet("+glob+") LIMIT 1")
	types := map[string]string{}
	for _, c := range cols {
		types[c.Name] = c.Type
	}
	for name, want := range map[string]string{
		"key": "VARCHAR", "caption": "VARCHAR", "prompt": "VARCHAR", "prompt_source": "VARCHAR",
		"image": "STRUCT(bytes BLOB, path VARCHAR)", "width": "INTEGER", "height": "INTEGER",
		"original_width": "INTEGER", "original_height": "INTEGER", "sha256": "VARCHAR", "source": "VARCHAR",
	} {
		if strings.ReplaceAll(types[name], `"`, "") != want {
			t.Errorf("column %s: DuckDB type %q, want %q", name, types[name], want)
		}
	}

	rows := duckdbtest.Query(t, "SELECT key, caption, prompt, width, height, original_width, sha256, source, "+
		"hex(image.bytes) AS img FROM read_parquet("+glob+") ORDER BY key")
	if int64(len(rows)) != sum.Written {
		t.Fatalf("DuckDB reads %d rows, the run wrote %d", len(rows), sum.Written)
	}
	members := map[string][]byte{}
	paths, _ := filepath.Glob(filepath.Join(in, "*.tar"))
	for _, p := range paths {
		for k, v := range tarMembers(t, p) {
			members[k] = v
		}
	}
	for _, r := range rows {
		key := r["key"].(string)
		if got, want := r["caption"], string(members[key+".txt"]); got != want {
			t.Errorf("%s: caption %q, input has %q", key, got, want)
		}
		sum := sha256.Sum256(members[key+".jpg"])
		if r["sha256"] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 %v is not the input image's", key, r["sha256"])
		}
		if fmt.Sprint(r["width"], r["height"], r["original_width"]) != "64 64 160" {
			t.Errorf("%s: sizes %v %v %v, want 64 64 160", key, r["width"], r["height"], r["original_width"])
		}
		if !strings.HasSuffix(r["source"].(string), ".tar#"+key+".jpg") {
			t.Errorf("%s: source %v", key, r["source"])
		}
		raw, err := hex.DecodeString(r["img"].(string))
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(raw))
		if err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 64 {
			t.Errorf("%s: stored image does not decode as 64x64 JPEG: %v", key, err)
		}
	}
	// Textual knowledge: words concatenate back to the prompt, one class and
	// keyword flag per word, special text exactly for the selected samples.
	tk := duckdbtest.Query(t, "SELECT key, prompt, array_to_string(words, '') AS joined, len(words) AS nw, "+
		"len(pos) AS np, len(pos_raw) AS nr, len(keyword) AS nk, list_contains(keyword, true) AS anykw, "+
		"text_knowledge AS tk, special_text AS st FROM read_parquet("+glob+") ORDER BY key")
	selected := 0
	for _, r := range tk {
		key := r["key"]
		if r["joined"] != r["prompt"] {
			t.Errorf("%s: words join to %q, prompt is %q", key, r["joined"], r["prompt"])
		}
		if n := toInt(r["nw"]); n == 0 || toInt(r["np"]) != n || toInt(r["nr"]) != n || toInt(r["nk"]) != n {
			t.Errorf("%s: %v words, %v pos, %v pos_raw, %v keyword flags", key, r["nw"], r["np"], r["nr"], r["nk"])
		}
		if r["anykw"] != true {
			t.Errorf("%s: no keyword in %q (every synthetic caption names a coloured shape)", key, r["prompt"])
		}
		st, _ := r["st"].(string)
		if r["tk"] == true {
			selected++
			if !strings.HasPrefix(st, "[") || !strings.Contains(st, "[n]") {
				t.Errorf("%s: selected, but special text %q has no class tokens", key, st)
			}
		} else if st != "" {
			t.Errorf("%s: not selected, but special text is %q", key, st)
		}
	}
	if selected == 0 || selected == len(tk) {
		t.Errorf("%d of %d samples selected for textual knowledge; want about half", selected, len(tk))
	}
	kv := duckdbtest.Query(t, "SELECT decode(key) AS k FROM parquet_kv_metadata("+
		duckdbtest.Quote(filepath.Join(out, "00000.parquet"))+") WHERE decode(key) LIKE 'pos.%'")
	if len(kv) == 0 {
		t.Errorf("00000.parquet has no pos.* metadata (tagger dictionaries and class table)")
	}

	rej := duckdbtest.Query(t, "SELECT reason, count(*) AS n FROM read_parquet("+
		duckdbtest.Quote(filepath.Join(out, "*_rejects.parquet"))+") GROUP BY reason ORDER BY reason")
	var total int64
	for _, r := range rej {
		total += toInt(r["n"])
	}
	if total != sum.Rejected {
		t.Fatalf("DuckDB reads %d rejects, the run rejected %d: %v", total, sum.Rejected, rej)
	}
}

func toInt(v any) int64 {
	var n int64
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

// A run from S3 to S3 writes the same rows as a run between local folders.
func TestPreprocessS3ToS3(t *testing.T) {
	q := s3test.Query(s3test.Start(t, "raw", "train"))
	local := makeSample(t, 20, 5)
	ctx := context.Background()
	inBucket, err := shards.OpenDir(ctx, "s3://raw/laion?"+q, false)
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(local, "*.tar"))
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		if err := inBucket.WriteAll(ctx, filepath.Base(p), b, nil); err != nil {
			t.Fatal(err)
		}
	}
	inBucket.Close()

	cfg := testConfig()
	s3sum := preprocess(t, "s3://raw/laion/{00000..00003}.tar?"+q, "s3://train/shards?"+q, cfg, Split{0, 1})
	fileOut := filepath.Join(t.TempDir(), "out")
	fileSum := preprocess(t, local, fileOut, cfg, Split{0, 1})
	if s3sum.Processed != 4 || s3sum.Read != fileSum.Read || s3sum.Written != fileSum.Written || s3sum.Rejected != fileSum.Rejected {
		t.Fatalf("s3 run %+v, file run %+v", s3sum, fileSum)
	}
	outBucket, err := shards.OpenDir(ctx, "s3://train/shards?"+q, false)
	if err != nil {
		t.Fatal(err)
	}
	defer outBucket.Close()
	for _, name := range []string{"00000.parquet", "00003_rejects.parquet", "00003_stats.json", "manifest.json"} {
		if ok, err := outBucket.Exists(ctx, name); err != nil || !ok {
			t.Errorf("s3 output lacks %s (%v)", name, err)
		}
	}
	done, err := shards.Complete(ctx, outBucket, "00002")
	if err != nil || !done {
		t.Fatalf("shard 00002 on s3 not complete: %v", err)
	}
	// Re-running against S3 skips everything.
	again := preprocess(t, "s3://raw/laion/*.tar?"+q, "s3://train/shards?"+q, cfg, Split{0, 1})
	if again.Skipped != 4 || again.Processed != 0 {
		t.Fatalf("s3 re-run %+v: want 4 skipped", again)
	}
}

// Unreachable inputs and outputs fail before any work, saying what to check.
func TestPreprocessFailsEarly(t *testing.T) {
	q := s3test.Query(s3test.Start(t, "raw"))
	in := makeSample(t, 4, 4)
	tests := []struct {
		name, input, output, want string
	}{
		{"missing_input_bucket", "s3://nope/x/*.tar?" + q, t.TempDir(), "nope"},
		{"input_matches_nothing", filepath.Join(t.TempDir(), "*.tar"), t.TempDir(), "matched no"},
		{"missing_output_bucket", in, "s3://gone/out?" + q, "not writable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Preprocess(context.Background(), PreprocessOptions{Input: tt.input, Output: tt.output, Config: testConfig(), Split: Split{0, 1}, Logger: quietLog})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
