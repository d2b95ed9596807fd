package inspect

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/kediff/kediff/shards"
)

// Bounds of TestLargeShard: a shard of 100,000 rows (88 MB, mostly images)
// gives a report of under 2 MB (50 samples; 0.44 MB here), under a fifth of
// the file is read (15 MB: the image pages of unshown rows stay on the
// blob), the live heap after each GC stays within 32 MiB of where it
// started (14-20 MiB here: 6 MiB of read buffers, 4 MiB of histogram values,
// the footer) and the heap with its garbage within 80 MiB (31-46 here).
const (
	largeRows      = 100_000
	largeMaxHeap   = 80 << 20
	largeMaxLive   = 32 << 20
	largeMaxReport = 2 << 20
)

func noiseImage(t testing.TB, rng *rand.Rand) []byte {
	m := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(m.Pix); i += 4 {
		c := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, 255
	}
	return encodePNG(t, m)
}

func TestLargeShard(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100,000-row shard")
	}
	dir := t.TempDir()
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	var imgs [][]byte
	for range 16 {
		imgs = append(imgs, noiseImage(t, rng))
	}
	ctx := context.Background()
	b, err := shards.OpenDir(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	w, err := shards.NewShardWriter(ctx, b, "00000", shards.Metadata{Version: "test", Config: []byte(`{}`)}, shards.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range largeRows {
		key := fmt.Sprintf("r%06d", i)
		row := shards.Row{Key: key, Caption: "a small noisy picture " + key[:2+i%5], Prompt: "a small noisy picture",
			PromptSource: "caption", Image: &shards.Image{Bytes: imgs[i%len(imgs)], Path: key + ".png"},
			Width: 16, Height: 16 + int32(i%3), Words: []string{"a ", "small ", "noisy ", "picture"},
			POS: []string{"other", "adjective", "adjective", "noun"}, Keyword: []bool{false, true, true, i%2 == 0},
			Objects: []shards.Object{{Label: "dot", Score: 0.9, X0: 0.1, Y0: 0.1, X1: 0.5, Y1: 0.5, Kept: true},
				{Label: "dot", Score: 0.2, X0: 0.5, Y0: 0.5, X1: 0.9, Y1: 0.9}}[:i%3],
			LossMask: []byte{1, 0, 0, byte(i % 2)}, LossMaskShape: []int32{2, 2}}
		if err := w.Write(&row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(shards.Stats{Read: largeRows}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	fi, err := os.Stat(filepath.Join(dir, "00000.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d rows, %.1f MB, in %v", largeRows, float64(fi.Size())/1e6, time.Since(start).Round(time.Millisecond))

	// Sample the heap while the report is made.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	base, baseLive := ms.HeapAlloc, live[0].Value.Uint64()
	peak, peakLive := base, baseLive
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				runtime.ReadMemStats(&m)
				peak = max(peak, m.HeapAlloc)
				metrics.Read(live)
				peakLive = max(peakLive, live[0].Value.Uint64())
			}
		}
	}()
	read0 := bytesRead.Load()
	start = time.Now()
	var out countWriter
	sum, err := Write(ctx, dir, &out, Options{})
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	read := bytesRead.Load() - read0
	t.Logf("report: %d samples, %.2f MB, in %v; heap peak %.1f MiB above the start (live heap %.1f MiB); read %.1f MB of the %.1f MB file",
		sum.Shown, float64(out.n)/1e6, time.Since(start).Round(time.Millisecond), float64(peak-base)/(1<<20),
		float64(peakLive-baseLive)/(1<<20), float64(read)/1e6, float64(fi.Size())/1e6)
	if sum.Rows != largeRows || sum.Shown != DefaultSample {
		t.Errorf("summary %+v, want %d rows and %d shown", sum, largeRows, DefaultSample)
	}
	if out.n > largeMaxReport {
		t.Errorf("report is %d bytes, want at most %d", out.n, largeMaxReport)
	}
	if peak-base > largeMaxHeap {
		t.Errorf("heap grew by %d bytes, want at most %d", peak-base, largeMaxHeap)
	}
	if peakLive > baseLive && peakLive-baseLive > largeMaxLive {
		t.Errorf("live heap grew by %d bytes, want at most %d", peakLive-baseLive, largeMaxLive)
	}
	if read > fi.Size()/5 {
		t.Errorf("read %d bytes of a %d-byte shard: the unshown images were read", read, fi.Size())
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)
