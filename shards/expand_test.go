package shards

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestExpandBraces(t *testing.T) {
	r, err := ExpandBraces("in/{00000..00123}.tar")
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 124 || r[0] != "in/00000.tar" || r[7] != "in/00007.tar" || r[123] != "in/00123.tar" {
		t.Fatalf("got %d names, first %q, last %q", len(r), r[0], r[len(r)-1])
	}
	cases := []struct{ in, want string }{
		{"{a,b}{1..2}", "[a1 a2 b1 b2]"},
		{"x{1..3}y", "[x1y x2y x3y]"},
		{"{3..1}", "[3 2 1]"},
		{"{0..10..5}", "[0 5 10]"},
		{"{8..11}", "[8 9 10 11]"},
		{"{08..11}", "[08 09 10 11]"},
		{"{a,b{1,2}}/c", "[a/c b1/c b2/c]"},
		{"{x}{a,b}", "[{x}a {x}b]"},
		{"{x{a,b}}", "[{xa} {xb}]"},
		{"{a,}z", "[az z]"},
		{"unbalanced{a,b", "[unbalanced{a,b]"},
		{"plain.tar", "[plain.tar]"},
	}
	for _, c := range cases {
		r, err := ExpandBraces(c.in)
		if err != nil || fmt.Sprint(r) != c.want {
			t.Errorf("ExpandBraces(%q) = %v, %v; want %s", c.in, r, err, c.want)
		}
	}
	if _, err := ExpandBraces("{0..99999999999}"); err == nil {
		t.Error("a huge range should fail fast")
	}
}

func TestInputID(t *testing.T) {
	for _, c := range []struct{ key, base, want string }{
		{"in/00012.tar", "in", "00012"},
		{"in/2024/05/part-3.parquet", "in", "2024_05_part-3"},
		{"in/a b&c.tar.gz", "in", "a_b_c"},
		{"input/x.tar", "in", "input_x"},
		{"x.tgz", "", "x"},
		{".hidden.tar", "", "_hidden"},
	} {
		if got := inputID(c.key, c.base); got != c.want {
			t.Errorf("inputID(%q, %q) = %q, want %q", c.key, c.base, got, c.want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	p, err := parsePattern("s3://b/x/0000?.tar?endpoint=http://127.0.0.1:9&region=r")
	if err != nil || p.host != "b" || p.path != "x/0000?.tar" || p.query != "endpoint=http://127.0.0.1:9&region=r" {
		t.Fatalf("%+v %v", p, err)
	}
	if got := p.objectURL("x/00001.tar"); got != "s3://b/x/00001.tar?endpoint=http://127.0.0.1:9&region=r" {
		t.Fatalf("objectURL = %s", got)
	}
	dir := t.TempDir()
	p, err = parsePattern(filepath.Join(dir, "in") + "/")
	if err != nil || p.scheme != "file" || !p.dir || "/"+p.path != filepath.ToSlash(dir)+"/in" {
		t.Fatalf("plain path: %+v %v", p, err)
	}
}

func TestExpand(t *testing.T) {
	ctx := context.Background()
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			tarData := makeTar(t, validTar...)
			for i := range 4 {
				put(t, st.url(fmt.Sprintf("in/%05d.tar", i)), tarData)
			}
			put(t, st.url("in/00000.parquet"), []byte("img2dataset metadata, not an input"))
			put(t, st.url("in/00000_stats.json"), []byte("{}"))
			put(t, st.url("in/2024/05/part-3.tar"), tarData)
			cases := []struct {
				pattern string
				ids     string
			}{
				{"in/{00000..00002}.tar", "[00000 00001 00002]"},
				{"in/{00001,00003}.tar", "[00001 00003]"},
				{"in/*.tar", "[00000 00001 00002 00003]"},
				{"in/0000?.tar", "[00000 00001 00002 00003]"},
				{"in/0000[02].tar", "[00000 00002]"},
				{"in/*/*/*.tar", "[2024_05_part-3]"},
				{"in/00002.tar", "[00002]"},
				{"in", "[00000 00001 00002 00003 2024_05_part-3]"},
				{"in/", "[00000 00001 00002 00003 2024_05_part-3]"},
				{"in/00000.parquet", "[00000]"},
			}
			for _, c := range cases {
				ins, err := Expand(ctx, st.url(c.pattern))
				if err != nil {
					t.Errorf("%s: %v", c.pattern, err)
					continue
				}
				var ids []string
				for _, in := range ins {
					ids = append(ids, in.ID)
				}
				if fmt.Sprint(ids) != c.ids {
					t.Errorf("%s: IDs %v, want %s", c.pattern, ids, c.ids)
				}
			}
			errs := []struct{ pattern, want string }{
				{"in/*.zip", "matched no files"},
				{"in/*.json", "neither .tar nor .parquet"},
				{"none/*.tar", "matched no files; check the prefix"},
				{"in/{00000..00009}.tar", "6 of 10 files are missing"},
				{"in/zzz.tar", "not found; check the path"},
				{"nothere", "not found or holds no"},
				{"in/{00000.tar,00000.parquet}", "would both write output shard \"00000\""},
			}
			for _, c := range errs {
				_, err := Expand(ctx, st.url(c.pattern))
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: err = %v, want %q", c.pattern, err, c.want)
				}
			}
		})
	}
}

func TestExpandPlainPath(t *testing.T) {
	dir := t.TempDir()
	put(t, "file://"+dir+"/00000.tar", makeTar(t, validTar...))
	ins, err := Expand(context.Background(), dir+"/{00000..00000}.tar")
	if err != nil || len(ins) != 1 || ins[0].URL != "file://"+filepath.ToSlash(dir)+"/00000.tar" {
		t.Fatalf("%+v %v", ins, err)
	}
}
