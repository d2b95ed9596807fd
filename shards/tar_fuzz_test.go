package shards

import (
	"archive/tar"
	"bytes"
	"context"
	"testing"
)

// FuzzReadTar feeds arbitrary bytes to the tar reader: it must never panic,
// never fail (bad bytes are rejects), and number samples consecutively.
func FuzzReadTar(f *testing.F) {
	full := makeTar(f, validTar...)
	f.Add(full)
	f.Add(full[:len(full)/2])
	f.Add(full[:700])
	f.Add(makeTar(f, member{name: "../evil.txt", body: "x"}, member{name: "/abs.jpg", body: "y"},
		member{name: "a.jpg", body: "1"}, member{name: "a.jpg", body: "2"}, member{name: "b.txt", body: "c"},
		member{name: "l", typ: tar.TypeSymlink, link: "/"}))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := Input{URL: "mem://fuzz/x.tar", ID: "x", Format: FormatTar}
		next := 0
		e := &emitter{in: in, emit: func(s Sample) error {
			if s.Index != next {
				t.Fatalf("Index %d, want %d", s.Index, next)
			}
			next++
			return nil
		}}
		if err := scanTar(context.Background(), bytes.NewReader(data), ReadOptions{MaxMemberBytes: 1 << 20}, e); err != nil {
			t.Fatalf("scanTar: %v", err)
		}
	})
}
