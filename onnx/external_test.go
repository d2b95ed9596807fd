package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kediff/kediff/internal/allocs"
)

// pb builds protobuf messages for the crafted models below.
type pb []byte

func (b pb) bytes(num protowire.Number, v []byte) pb {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}
func (b pb) str(num protowire.Number, s string) pb { return b.bytes(num, []byte(s)) }
func (b pb) varint(num protowire.Number, v uint64) pb {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// craftModel is a model y = Identity(W) with W a float32 [n] initializer
// whose data lies in external file loc (no external data when loc is ""),
// optionally nested inside an If node's then-branch.
func craftModel(loc string, n int, nested bool) []byte {
	tensor := pb(nil).varint(1, uint64(n)).varint(2, 1).str(8, "W")
	if loc != "" {
		tensor = tensor.bytes(13, pb(nil).str(1, "location").str(2, loc)).
			bytes(13, pb(nil).str(1, "offset").str(2, "0")).
			bytes(13, pb(nil).str(1, "length").str(2, "12")).
			varint(14, 1)
	} else {
		tensor = tensor.bytes(9, make([]byte, 4*n))
	}
	dim := pb(nil).varint(1, uint64(n))
	typ := pb(nil).bytes(1, pb(nil).varint(1, 1).bytes(2, pb(nil).bytes(1, dim)))
	out := pb(nil).str(1, "y").bytes(2, typ)
	node := pb(nil).str(1, "W").str(2, "y").str(4, "Identity")
	graph := pb(nil).bytes(1, node).str(2, "g").bytes(5, tensor).bytes(12, out)
	if nested {
		// The tensor sits in a Constant node's attribute inside a subgraph.
		inner := pb(nil).bytes(1, pb(nil).str(2, "y").str(4, "Constant").
			bytes(5, pb(nil).str(1, "value").bytes(5, tensor).varint(20, 4))).str(2, "then").bytes(12, out)
		graph = pb(nil).bytes(1, pb(nil).str(1, "c").str(2, "y").str(4, "If").
			bytes(5, pb(nil).str(1, "then_branch").bytes(6, inner).varint(20, 5))).str(2, "g").bytes(12, out)
	}
	return pb(nil).varint(1, 8).bytes(8, pb(nil).str(1, "").varint(2, 13)).bytes(7, graph)
}

func TestExternalDataOutsideFolder(t *testing.T) {
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	os.Mkdir(models, 0o755)
	secret := filepath.Join(dir, "secret.bin")
	os.WriteFile(secret, []byte("TOPSECRETXYZ"), 0o600)
	os.WriteFile(filepath.Join(models, "w.bin"), make([]byte, 12), 0o644)
	os.Symlink(secret, filepath.Join(models, "link.bin"))
	tests := []struct {
		name, loc string
		nested    bool
		want      string // "" = accepted
	}{
		{"no_external_data", "", false, ""},
		{"in_folder", "w.bin", false, ""},
		{"in_folder_dot", "./w.bin", false, ""},
		{"missing_in_folder", "gone.bin", false, ""},
		{"parent", "../secret.bin", false, "outside the model's folder"},
		{"etc_passwd", "../../../../../../etc/passwd", false, "outside the model's folder"},
		{"absolute", "/etc/passwd", false, "an absolute path"},
		{"absolute_secret", secret, false, "an absolute path"},
		{"backslash_parent", `..\..\etc\passwd`, false, "outside the model's folder"},
		{"inner_parent", "sub/../../secret.bin", false, "outside the model's folder"},
		{"symlink_out", "link.bin", false, "outside the model's folder"},
		{"nested_subgraph_parent", "../secret.bin", true, "outside the model's folder"},
		{"nested_subgraph_ok", "w.bin", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(models, tt.name+".onnx")
			if err := os.WriteFile(path, craftModel(tt.loc, 3, tt.nested), 0o644); err != nil {
				t.Fatal(err)
			}
			err := checkExternalData(path)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if tt.want != "" {
				// Open refuses before loading onnxruntime, so this holds on
				// machines without it too.
				if _, err := Open(path, SessionOptions{}); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Open: err = %v, want one saying %q", err, tt.want)
				}
			}
		})
	}
}

// Corrupt and hostile protobuf: lengths past the end, absurd varints, deep
// nesting, huge strings. Each is a clear error with bounded memory.
func TestExternalDataCorrupt(t *testing.T) {
	good := craftModel("w.bin", 3, true)
	deep := pb(nil)
	for range 200 { // graph -> node -> attribute -> graph ...
		deep = pb(nil).bytes(1, pb(nil).bytes(5, pb(nil).bytes(6, deep)))
	}
	tests := map[string][]byte{
		"truncated":       good[:len(good)-3],
		"length_past_end": pb(nil).bytes(7, nil)[:1:1],
		"huge_length":     append(protowire.AppendTag(nil, 7, protowire.BytesType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"bad_varint":      bytes.Repeat([]byte{0xff}, 20),
		"group":           protowire.AppendTag(nil, 3, protowire.StartGroupType),
		"deep_nesting":    pb(nil).bytes(7, deep),
		"huge_name":       pb(nil).bytes(7, pb(nil).bytes(5, pb(nil).bytes(8, make([]byte, 1<<20)))),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var err error
			alloc, _ := allocs.Measure(func() { err = checkExternalDataIn(bytes.NewReader(b), int64(len(b)), dir) })
			if err == nil {
				t.Fatal("accepted")
			}
			if alloc > 1<<20 {
				t.Errorf("allocated %d bytes", alloc)
			}
			t.Log(err)
		})
	}
	// A model far larger than memory, claimed by a length field, is not read.
	claim := append(protowire.AppendTag(nil, 7, protowire.BytesType), protowire.AppendVarint(nil, 1<<40)...)
	if err := checkExternalDataIn(bytes.NewReader(claim), 1<<41, t.TempDir()); err == nil {
		t.Error("a 1 TB claimed graph in a 12-byte file was accepted")
	}
}

func FuzzCheckExternalData(f *testing.F) {
	f.Add(craftModel("w.bin", 3, false))
	f.Add(craftModel("../x", 3, true))
	f.Add(craftModel("", 2, false))
	if b, err := os.ReadFile("testdata/tiny.onnx"); err == nil {
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkExternalDataIn(bytes.NewReader(b), int64(len(b)), dir)
		_ = err
	})
}
