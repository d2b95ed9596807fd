package imaging

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// libjpeg-turbo warnings are judged from the data, not from TurboJPEG's
// process-wide message buffer, so the same input always gets the same answer
// and the same detail, whatever was decoded before it.
func TestJPEGWarnings(t *testing.T) {
	photo, err := os.ReadFile("testdata/photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	eoi := bytes.LastIndex(photo, []byte{0xFF, 0xD9})
	// Junk between the entropy data and EOI: "extraneous bytes before marker".
	extraneous := append(append(append([]byte{}, photo[:eoi]...), 1, 2, 3), photo[eoi:]...)
	truncated := photo[:len(photo)*2/3]
	padded := append(append([]byte{}, photo...), 0, 0, 0, 0)

	tests := []struct {
		name   string
		data   []byte
		reject bool
	}{
		{"complete", photo, false},
		{"zero_padding_after_eoi", padded, false},
		{"extraneous_bytes_before_eoi", extraneous, false},
		{"truncated", truncated, true},
	}
	for _, format := range []string{"jpeg", "png"} { // YUV path, RGB path
		for _, tt := range tests {
			t.Run(format+"/"+tt.name, func(t *testing.T) {
				details := map[string]bool{}
				// Fresh and reused processors, interleaved with other inputs.
				for i := range 4 {
					p, err := NewProcessor(Options{Size: 64, Format: format})
					if err != nil {
						t.Fatal(err)
					}
					for range i {
						p.Process(truncated)
						p.Process(photo)
					}
					_, err = p.Process(tt.data)
					var rej *Reject
					if got := errors.As(err, &rej); got != tt.reject {
						t.Fatalf("rejected = %v (%v), want %v", got, err, tt.reject)
					}
					if rej != nil {
						if rej.Reason != ReasonDecode {
							t.Fatalf("reason %q, want %q", rej.Reason, ReasonDecode)
						}
						details[rej.Detail] = true
					}
					p.Close()
				}
				if len(details) > 1 {
					t.Fatalf("the same input got different details: %v", details)
				}
			})
		}
	}
}

func TestJPEGComplete(t *testing.T) {
	for _, tt := range []struct {
		data []byte
		want bool
	}{
		{[]byte{0xFF, 0xD8, 0xFF, 0xD9}, true},
		{[]byte{0xFF, 0xD9, 0, 0}, true},
		{[]byte{0xFF, 0xD8, 0x12, 0x34}, false},
		{[]byte{0xD9}, false},
		{nil, false},
	} {
		if got := jpegComplete(tt.data); got != tt.want {
			t.Errorf("jpegComplete(% x) = %v, want %v", tt.data, got, tt.want)
		}
	}
}
