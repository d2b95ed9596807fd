package shards

import (
	"context"
	"strings"
	"testing"
)

func TestFolderReader(t *testing.T) {
	files := map[string]string{
		"imgs/a.jpg":          "A",
		"imgs/a.txt":          "an apple\n",
		"imgs/a.json":         `{"w":1}`,
		"imgs/b.png":          "B",
		"imgs/c.txt":          "orphan caption",
		"imgs/d.jpg":          "D1",
		"imgs/d.png":          "D2",
		"imgs/d.txt":          "two images",
		"imgs/e.WEBP":         "E",
		"imgs/e.txt":          "upper-case extension",
		"imgs/big.jpg":        strings.Repeat("x", 100),
		"imgs/big.txt":        "big",
		"imgs/README.md":      "not a sample",
		"imgs/stats.json":     `{"not":"a sample"}`,
		"imgs/sub/f.jpg":      "F",
		"imgs/sub/f.txt":      "in a subfolder",
		"imgs/sub/deep/g.jpg": "G",
		"imgs/sub/deep/g.txt": "deeper",
	}
	wantRoot := []got{
		{key: "a", caption: "an apple", image: "A", meta: `{"w":1}`},
		{key: "b", reason: "no_caption"},
		{key: "big", reason: "member_too_large", caption: "big"},
		{key: "c", reason: "no_image", caption: "orphan caption"},
		{key: "d", reason: "duplicate_member", caption: "two images"},
		{key: "e", caption: "upper-case extension", image: "E"},
	}
	for _, st := range stores(t) {
		t.Run(st.name, func(t *testing.T) {
			for name, body := range files {
				put(t, st.url(name), []byte(body))
			}
			ins, err := Expand(context.Background(), st.url("imgs/"))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, in := range ins {
				if in.Format != FormatFolder {
					t.Fatalf("input %+v: want a folder input", in)
				}
				ids = append(ids, in.ID)
			}
			if len(ids) != 3 || ids[0] != "imgs" || ids[1] != "sub" || ids[2] != "sub_deep" {
				t.Fatalf("IDs = %v, want [imgs sub sub_deep]", ids)
			}
			ss, err := readAll(t, ins[0], ReadOptions{MaxMemberBytes: 50})
			if err != nil {
				t.Fatal(err)
			}
			sameSamples(t, ss, wantRoot)
			ss, err = readAll(t, ins[1], ReadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameSamples(t, ss, []got{{key: "f", caption: "in a subfolder", image: "F"}})
			if ss[0].Source != ins[1].URL+"#f.jpg" {
				t.Errorf("Source = %q", ss[0].Source)
			}
		})
	}
}
