package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/allocs"
)

// file builds a safetensors file from a raw JSON header and data.
func file(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

// Hostile safetensors files: absurd header lengths, offsets that overlap,
// leave gaps or point past the end, dtypes that do not match the shape,
// shapes whose element count overflows. Each is a clear error from Decode
// and from Open (which streams), with bounded memory and time.
func TestHostileFiles(t *testing.T) {
	d8 := make([]byte, 8)
	withLen := func(n uint64, rest []byte) []byte { return append(binary.LittleEndian.AppendUint64(nil, n), rest...) }
	tests := []struct {
		name string
		buf  []byte
		want string
	}{
		{"header_len_2^63", withLen(1<<63, []byte("{}")), "exceeds file size"},
		{"header_len_max", withLen(^uint64(0), []byte("{}")), "exceeds file size"},
		{"header_len_past_file", withLen(1000, []byte("{}")), "exceeds file size"},
		{"header_len_over_limit", withLen(maxHeader+1, nil), "exceeds file size"},
		{"empty_file", nil, "has no header length"},
		{"header_not_json", file("not json", nil), "safetensors: header"},
		{"header_deep_nesting", file(`{"__metadata__":`+strings.Repeat("[", 20000)+strings.Repeat("]", 20000)+"}", nil), "exceeded max depth"},
		{"offsets_past_end", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, d8[:4]), "do not hold"},
		{"offsets_2^63", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}`, d8), "do not hold"},
		{"offsets_overflow_int", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}`, d8), "tensor \"a\""},
		{"offsets_negative", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, d8[:1]), "do not hold"},
		{"offsets_reversed", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, d8[:4]), "do not hold"},
		{"offsets_overlap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`, d8), "overlap or gap"},
		{"offsets_same_range", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, d8[:4]), "overlap or gap"},
		{"offsets_gap", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "overlap or gap"},
		{"data_not_covered", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, d8), "cover 4 of 8"},
		{"dtype_vs_shape", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, d8[:4]), "do not hold F32 [2]"},
		{"dtype_unknown", file(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, make([]byte, 16)), "unsupported dtype"},
		{"dtype_not_string", file(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, d8[:4]), "tensor \"a\""},
		{"shape_negative", file(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, nil), "bad shape"},
		{"shape_overflow", file(`{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), "bad shape"},
		{"shape_wraps_to_small", file(`{"a":{"dtype":"U8","shape":[65536,65536,65536,65536],"data_offsets":[0,0]}}`, nil), "bad shape"},
		{"metadata_not_strings", file(`{"__metadata__":{"k":1}}`, nil), "__metadata__"},
		{"entry_not_object", file(`{"a":[1,2]}`, nil), "tensor \"a\""},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err, oerr error
			alloc, took := allocs.Measure(func() {
				_, _, err = Decode(tt.buf)
				path := filepath.Join(dir, tt.name+".safetensors")
				os.WriteFile(path, tt.buf, 0o644)
				_, oerr = ReadHeader(path)
			})
			for _, e := range []error{err, oerr} {
				if e == nil || !strings.Contains(e.Error(), tt.want) {
					t.Errorf("err = %v, want one saying %q", e, tt.want)
				}
			}
			if alloc > 16<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
		})
	}
	// A sparse 1 TB file whose header claims 2^40 bytes: refused by the
	// header limit before anything is read.
	path := filepath.Join(dir, "sparse.safetensors")
	if err := os.WriteFile(path, binary.LittleEndian.AppendUint64(nil, 1<<40), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<40+16); err != nil {
		t.Skip(err)
	}
	var err error
	alloc, _ := allocs.Measure(func() { _, err = ReadHeader(path) })
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("sparse 1 TB file: %v", err)
	}
	if alloc > 16<<20 {
		t.Errorf("sparse file: allocated %d MiB", alloc>>20)
	}
}
