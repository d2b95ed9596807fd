package shards

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"testing"
)

type member struct {
	name, body string
	typ        byte   // 0 means a regular file
	link       string // for links
}

// makeTar builds a tar as img2dataset and GNU tar write them.
func makeTar(t testing.TB, ms ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		typ := m.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: m.name, Typeflag: typ, Mode: 0o644, Linkname: m.link, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(m.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// got is a sample in a form that tables compare easily.
type got struct {
	key, reason, caption, image, meta string
}

func readAll(t testing.TB, in Input, opt ReadOptions) ([]Sample, error) {
	t.Helper()
	var out []Sample
	n, err := Read(context.Background(), in, opt, func(s Sample) error {
		out = append(out, s)
		return nil
	})
	if n != len(out) {
		t.Fatalf("Read returned %d, emitted %d", n, len(out))
	}
	for i, s := range out {
		if s.Index != i || s.Shard != in.ID || !strings.HasPrefix(s.Source, in.URL+"#") {
			t.Fatalf("sample %d: Index %d Shard %q Source %q", i, s.Index, s.Shard, s.Source)
		}
		if s.Reject != "" && s.Image != nil {
			t.Fatalf("sample %d: reject %s carries image bytes", i, s.Reject)
		}
	}
	return out, err
}

func simplify(ss []Sample) []got {
	var g []got
	for _, s := range ss {
		g = append(g, got{key: s.Key, reason: string(s.Reject), caption: s.Caption, image: string(s.Image), meta: string(s.Meta)})
	}
	return g
}

func sameSamples(t *testing.T, have []Sample, want []got) {
	t.Helper()
	h := simplify(have)
	if fmt.Sprint(h) != fmt.Sprint(want) {
		t.Errorf("samples:\n have %v\n want %v", h, want)
		for _, s := range have {
			t.Logf("  %d %s %s: %s", s.Index, s.Key, s.Reject, s.Detail)
		}
	}
}

var validTar = []member{
	{name: "000000000.jpg", body: "JPG0"},
	{name: "000000000.txt", body: "a red apple\n"},
	{name: "000000000.json", body: `{"url":"http://x/0.jpg"}`},
	{name: "000000001.png", body: "PNG1"},
	{name: "000000001.txt", body: "a dog"},
	{name: "000000001.cls", body: "7"},
	{name: "sub/000000002.webp", body: "WEBP2"},
	{name: "sub/000000002.caption", body: "a cat"},
}

var validWant = []got{
	{key: "000000000", caption: "a red apple", image: "JPG0", meta: `{"url":"http://x/0.jpg"}`},
	{key: "000000001", caption: "a dog", image: "PNG1"},
	{key: "sub/000000002", caption: "a cat", image: "WEBP2"},
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestTarReader(t *testing.T) {
	full := makeTar(t, validTar...)
	cases := []struct {
		name string
		file string
		data []byte
		opt  ReadOptions
		want []got
	}{
		{"valid", "00000.tar", full, ReadOptions{}, validWant},
		{"gzip", "00000.tar.gz", gz(full), ReadOptions{}, validWant},
		{"bad members", "00000.tar", makeTar(t,
			member{name: "a.jpg", body: "A1"},
			member{name: "a.jpg", body: "A2"},
			member{name: "a.txt", body: "dup"},
			member{name: "b.txt", body: "orphan"},
			member{name: "../evil.txt", body: "x"},
			member{name: "/abs.jpg", body: "x"},
			member{name: "c.jpg", body: "C"},
			member{name: "l.jpg", typ: tar.TypeSymlink, link: "/etc/passwd"},
			member{name: "big.jpg", body: strings.Repeat("x", 100)},
			member{name: "big.txt", body: "big"},
			member{name: "dir/", typ: tar.TypeDir},
			member{name: "./d.jpg", body: "D"},
			member{name: "d.txt", body: "ok"},
			member{name: "a.jpg", body: "A3"},
			member{name: "a.txt", body: "again"},
		), ReadOptions{MaxMemberBytes: 50}, []got{
			{key: "a", reason: "duplicate_member", caption: "dup"},
			{key: "b", reason: "no_image", caption: "orphan"},
			{key: "../evil", reason: "unsafe_path"},
			{key: "/abs", reason: "unsafe_path"},
			{key: "c", reason: "no_caption"},
			{key: "l", reason: "unsafe_path"},
			{key: "big", reason: "member_too_large", caption: "big"},
			{key: "d", caption: "ok", image: "D"},
			{key: "a", caption: "again", image: "A3"}, // a key seen again later is a new sample
		}},
		{"truncated", "00000.tar", full[:bytes.Index(full, []byte("WEBP2"))+2], ReadOptions{}, []got{
			validWant[0], validWant[1],
			{key: "sub/000000002", reason: "truncated_input"},
		}},
		{"cut in a header", "00000.tar", full[:bytes.Index(full, []byte(`{"url"`))-200], ReadOptions{}, []got{
			{key: "000000000", reason: "truncated_input", caption: "a red apple"},
		}},
		{"not a tar", "00000.tar", bytes.Repeat([]byte("garbage!"), 100), ReadOptions{}, []got{
			{reason: "unreadable_input"},
		}},
		{"empty tar", "00000.tar", makeTar(t), ReadOptions{}, nil},
	}
	for _, st := range stores(t) {
		for _, c := range cases {
			t.Run(st.name+"/"+strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				u := st.url(strings.ReplaceAll(c.name, " ", "_") + "/" + c.file)
				put(t, u, c.data)
				ins, err := Expand(context.Background(), u)
				if err != nil {
					t.Fatal(err)
				}
				if len(ins) != 1 || ins[0].ID != "00000" || ins[0].Format != FormatTar {
					t.Fatalf("Expand = %+v", ins)
				}
				ss, err := readAll(t, ins[0], c.opt)
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				sameSamples(t, ss, c.want)
			})
		}
	}
}

func TestTarSourceNamesTheImage(t *testing.T) {
	u := "mem://tarsource/in/00007.tar"
	put(t, u, makeTar(t, validTar...))
	ss, err := readAll(t, Input{URL: u, ID: "00007", Format: FormatTar}, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ss[2].Source != u+"#sub/000000002.webp" || ss[2].ImageName != "000000002.webp" {
		t.Fatalf("Source %q ImageName %q", ss[2].Source, ss[2].ImageName)
	}
}

func TestSplitKey(t *testing.T) {
	for in, want := range map[string][2]string{
		"000000012.jpg": {"000000012", "jpg"},
		"a/b.seg.PNG":   {"a/b", "seg.png"},
		"noext":         {"noext", ""},
		"dir.v1/x.txt":  {"dir.v1/x", "txt"},
	} {
		k, e := splitKey(in)
		if k != want[0] || e != want[1] {
			t.Errorf("splitKey(%q) = %q, %q; want %q", in, k, e, want)
		}
	}
}
