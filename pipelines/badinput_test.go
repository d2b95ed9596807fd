package pipelines

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kediff/kediff/internal/duckdbtest"
)

// Every kind of bad input named by the preprocessing issue, in one shard:
// each bad sample becomes a reject with its reason, each valid-but-unusual
// image becomes a row, and the run goes on.
func TestBadInputBecomesRejects(t *testing.T) {
	duckdbtest.Require(t)
	fixture := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "imaging", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	photo := fixture("photo.jpg")
	type member struct {
		name string
		data []byte
	}
	caption := func(s string) []byte { return []byte(s) }
	members := []member{
		{"000.jpg", photo}, {"000.txt", caption("一个红色的圆形")}, // good
		{"001.jpg", photo[:len(photo)/2]}, {"001.txt", caption("truncated jpeg")},
		{"002.png", fixture("corrupt.png")}, {"002.txt", caption("corrupt png")},
		{"003.jpg", nil}, {"003.txt", caption("zero-byte image")},
		{"004.jpg", caption("this is not an image")}, {"004.txt", caption("non-image file")},
		{"005.png", fixture("bomb.png")}, {"005.txt", caption("100000x100000 png")},
		{"006.jpg", photo}, // image without caption
		{"007.txt", caption("caption without image")},
		{"008.jpg", photo}, {"008.txt", caption(" \t\n ")},
		{"009.jpg", photo}, {"009.txt", []byte("bad \xff\xfe utf-8")},
		{"010.jpg", photo}, {"010.txt", caption(strings.Repeat("长", 1<<20/3+1))},
		{"011.jpg", photo}, {"011.txt", caption("first")}, {"011.txt", caption("duplicate extension")},
		{"../evil.jpg", photo},
		{"/abs.jpg", photo},
		// Valid images in unusual formats: converted, never rejected.
		{"020.jpg", fixture("cmyk.jpg")}, {"020.txt", caption("cmyk")},
		{"021.png", fixture("gray.png")}, {"021.txt", caption("grayscale")},
		{"022.png", fixture("png16_rgb.png")}, {"022.txt", caption("16-bit")},
		{"023.png", fixture("palette.png")}, {"023.txt", caption("palette")},
		{"024.png", fixture("alpha.png")}, {"024.txt", caption("alpha")},
		{"025.jpg", photo}, {"025.txt", caption("last complete sample before the cut")},
		{"026.jpg", photo}, {"026.txt", caption("cut off by the truncated tar")},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	cut := 0
	for _, m := range members {
		if m.name == "026.jpg" {
			tw.Flush()
			cut = buf.Len() + 512 + 1000 // inside 026.jpg's data
		}
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Format: tar.FormatPAX})
		tw.Write(m.data)
	}
	tw.Close()
	in := filepath.Join(t.TempDir(), "in")
	os.MkdirAll(in, 0o755)
	if err := os.WriteFile(filepath.Join(in, "00000.tar"), buf.Bytes()[:cut], 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "out")
	sum := preprocess(t, in, out, testConfig(), Split{0, 1})
	if sum.Read != sum.Written+sum.Rejected {
		t.Fatalf("read %d != written %d + rejected %d", sum.Read, sum.Written, sum.Rejected)
	}
	rows := duckdbtest.Query(t, "SELECT key FROM read_parquet("+duckdbtest.Quote(filepath.Join(out, "00000.parquet"))+") ORDER BY key")
	var keys []string
	for _, r := range rows {
		keys = append(keys, r["key"].(string))
	}
	if got, want := strings.Join(keys, " "), "000 020 021 022 023 024 025"; got != want {
		t.Errorf("rows %q, want %q", got, want)
	}
	rej := duckdbtest.Query(t, "SELECT key, reason FROM read_parquet("+
		duckdbtest.Quote(filepath.Join(out, "00000_rejects.parquet"))+") ORDER BY index")
	got := map[string]string{}
	for _, r := range rej {
		got[r["key"].(string)] += r["reason"].(string) + " "
	}
	want := map[string]string{
		"001": "image_decode", "002": "image_decode", "003": "image_empty", "004": "image_format",
		"005": "image_too_large", "006": "no_caption", "007": "no_image", "008": "caption_empty",
		"009": "caption_invalid_utf8", "010": "caption_too_long", "011": "duplicate_member",
		"026": "truncated_input",
	}
	for key, reason := range want {
		if strings.TrimSpace(got[key]) != reason {
			t.Errorf("sample %s: rejected as %q, want %q", key, strings.TrimSpace(got[key]), reason)
		}
	}
	unsafe := 0
	for key, reasons := range got {
		if strings.Contains(reasons, "unsafe_path") {
			unsafe++
			if _, ok := want[key]; ok {
				t.Errorf("sample %s: unexpected unsafe_path", key)
			}
		}
	}
	if unsafe != 2 {
		t.Errorf("%d unsafe_path rejects, want 2 (../evil.jpg, /abs.jpg): %v", unsafe, got)
	}
	// Nothing was written outside the output folder.
	if _, err := os.Stat(filepath.Join(filepath.Dir(out), "evil.jpg")); err == nil {
		t.Errorf("a tar member escaped into %s", filepath.Dir(out))
	}
}
