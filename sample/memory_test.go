package sample

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kediff/kediff/internal/testckpt"
	"github.com/kediff/kediff/unet"
)

// peakHeap runs fn while sampling the live heap every millisecond and
// returns the largest value seen above the heap at the start.
func peakHeap(t *testing.T, fn func()) uint64 {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	start := ms.HeapAlloc
	var peak uint64
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				mu.Lock()
				peak = max(peak, m.HeapAlloc)
				mu.Unlock()
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	if peak < start {
		return 0
	}
	return peak - start
}

// TestMemoryOneModelAtATime: sampling over eight experts needs about the
// memory of sampling with one model, because only one is held at a time.
func TestMemoryOneModelAtATime(t *testing.T) {
	if testing.Short() {
		t.Skip("writes eight 7 MB checkpoints")
	}
	cfg := unet.TinyConfig()
	cfg.ModelChannels, cfg.NumResBlocks, cfg.NormGroups, cfg.NumHeadChannels = 64, 2, 16, 32
	tok := testckpt.Vocab(t)
	root := t.TempDir()
	const n = 8
	first := testckpt.Random(t, cfg, 1, 0.01)
	modelBytes := uint64(4 * first.NumParams())
	var experts []*Checkpoint
	for k := range n {
		m := testckpt.Random(t, cfg, uint64(k+1), 0.01)
		testckpt.ShareTextEncoder(first, m)
		experts = append(experts, openCheckpoint(t, testckpt.Write(t, filepath.Join(root, fmt.Sprint(k)), m, tok, k, n)))
	}
	base := openCheckpoint(t, testckpt.Write(t, filepath.Join(root, "base"), first, tok, -1, n))
	first = nil
	run := func(mix *Mixture) {
		opt := DefaultOptions()
		opt.Steps, opt.Batch = 16, 2
		res, err := Run(context.Background(), mix, []string{"a red circle", "a blue square"}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Segments) != len(mix.Experts)+boolInt(len(mix.Experts) == 0) {
			t.Fatalf("%d segments", len(res.Segments))
		}
	}
	one, _ := NewMixture(base, nil)
	eight, err := NewMixture(nil, experts)
	if err != nil {
		t.Fatal(err)
	}
	single := peakHeap(t, func() { run(one) })
	mixture := peakHeap(t, func() { run(eight) })
	t.Logf("model %.1f MB; peak heap above the start: one model %.1f MB, eight experts %.1f MB", float64(modelBytes)/1e6, float64(single)/1e6, float64(mixture)/1e6)
	if mixture > single+modelBytes/2 {
		t.Errorf("eight experts peaked at %.1f MB, one model at %.1f MB: more than one model is held", float64(mixture)/1e6, float64(single)/1e6)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
