package shards

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/allocs"
)

// tarHeader returns the bytes of a tar header for a member of the claimed
// size, followed by body (fewer bytes than claimed: the file is cut short).
func tarHeader(t *testing.T, hdr *tar.Header, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	return append(buf.Bytes(), body...) // no Close: the member is not complete
}

// Hostile tar headers: a member claiming 10^12 bytes (image, caption, other,
// in a PAX header), in a short file. Nothing of that size is allocated; the
// sample is a reject and the rest of the file a truncated-input reject.
func TestTarHostileSizes(t *testing.T) {
	const tera = 1_000_000_000_000
	caption := makeTar(t, member{name: "a.txt", body: "a cat"})
	caption = caption[:len(caption)-1024] // drop the end-of-archive blocks
	tests := []struct {
		name    string
		data    []byte
		reasons []Reason
	}{
		{"image_1e12", tarHeader(t, &tar.Header{Name: "a.jpg", Mode: 0o644, Size: tera, Format: tar.FormatGNU}, "xxxx"),
			[]Reason{ReasonTruncatedInput}},
		{"caption_1e12", append(caption, tarHeader(t, &tar.Header{Name: "b.txt", Mode: 0o644, Size: tera, Format: tar.FormatGNU}, "yy")...),
			[]Reason{ReasonNoImage, ReasonTruncatedInput}},
		{"other_member_1e12", tarHeader(t, &tar.Header{Name: "a.npy", Mode: 0o644, Size: tera, Format: tar.FormatGNU}, "zz"),
			[]Reason{ReasonTruncatedInput}},
		{"pax_1e12", tarHeader(t, &tar.Header{Name: "a.jpg", Mode: 0o644, Size: tera, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"comment": "x"}}, "xxxx"),
			[]Reason{ReasonTruncatedInput}},
		{"pax_header_1e12", func() []byte {
			// A PAX extended header that itself claims 10^12 bytes.
			h := tarHeader(t, &tar.Header{Name: "PaxHeaders/a.jpg", Mode: 0o644, Size: tera, Format: tar.FormatGNU}, "")
			h[156] = tar.TypeXHeader // retype it, and fix the checksum
			sum := 0
			for i, c := range h[:512] {
				if i >= 148 && i < 156 {
					c = ' '
				}
				sum += int(c)
			}
			copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
			return append(h, strings.Repeat("9", 600)...)
		}(), []Reason{ReasonUnreadableInput}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Reason
			var details []string
			e := &emitter{in: Input{URL: "mem://t/x.tar", ID: "x"}, emit: func(s Sample) error {
				got = append(got, s.Reject)
				details = append(details, s.Detail)
				return nil
			}}
			var err error
			alloc, took := allocs.Measure(func() { err = scanTar(context.Background(), bytes.NewReader(tt.data), ReadOptions{}, e) })
			if err != nil {
				t.Fatalf("scanTar: %v", err)
			}
			if len(got) < len(tt.reasons) {
				t.Fatalf("samples %v (%q), want at least %v", got, details, tt.reasons)
			}
			for i, r := range tt.reasons {
				if got[i] != r {
					t.Errorf("sample %d: %s (%s), want %s", i, got[i], details[i], r)
				}
			}
			if strings.Contains(tt.name, "_1e12") && !strings.HasPrefix(tt.name, "other") && !strings.HasPrefix(tt.name, "pax_header") &&
				!strings.Contains(details[len(details)-1], "1000000000000 bytes, limit") {
				t.Errorf("last detail %q does not say the claimed size", details[len(details)-1])
			}
			for i, r := range got {
				if r == "" {
					t.Errorf("sample %d accepted", i)
				}
			}
			if alloc > 16<<20 {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			t.Logf("%v %q", got, details)
		})
	}
}
