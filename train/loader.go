package train

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
	"gocloud.dev/blob"

	"github.com/kediff/kediff/pos"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/tokenizer"
	"github.com/kediff/kediff/vae"
)

// shardRow is the subset of shards.Row the trainer reads.
type shardRow struct {
	Key             string   `parquet:"key"`
	Prompt          string   `parquet:"prompt"`
	Words           []string `parquet:"words,list"`
	POS             []string `parquet:"pos,list"`
	Keyword         []bool   `parquet:"keyword,list"`
	TextKnowledge   bool     `parquet:"text_knowledge"`
	SpecialText     string   `parquet:"special_text"`
	VisualKnowledge bool     `parquet:"visual_knowledge"`
	LossMask        []byte   `parquet:"loss_mask,optional"`
	LossMaskShape   []int32  `parquet:"loss_mask_shape,list"`
	Latent          []byte   `parquet:"latent,optional"`
	LatentShape     []int32  `parquet:"latent_shape,list"`
	LatentDType     string   `parquet:"latent_dtype,optional"`
}

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	Data        string // blob URL of a shard folder (manifest.json or *.parquet), a .parquet file, or a comma-separated list of .parquet URLs
	Batch       int    // samples per global batch (all ranks together)
	LatentSize  int    // latent side h = w (the model's image_size)
	LatentChans int    // latent channels (4)
	TextCtx     int    // tokens per prompt
	// SliceLo and SliceHi are this rank's samples of every global batch:
	// positions [SliceLo, SliceHi) (both 0: the whole batch). With one
	// stream every rank walks it (the same shuffle for any number of
	// ranks) and decodes only its slice, so the global batches do not
	// depend on how many ranks share them.
	SliceLo, SliceHi int
	// Streams > 1 splits the data into that many independent streams, as
	// MosaicML Streaming's canonical nodes do: stream s reads the shards
	// i with i % Streams == s (or, with fewer shards than streams, the
	// rows whose shard and row index add up to s mod Streams) through its
	// own shuffle, and gives Batch/Streams samples of every global batch,
	// in stream order. A rank reads only its streams, [StreamLo,
	// StreamHi), whose samples are its slice. The batches depend on
	// Streams, not on the number of ranks that share them.
	Streams            int
	StreamLo, StreamHi int
	Seed               uint64  // shuffle and CFG-drop seed
	ShuffleBuffer      int     // samples in the shuffle buffer (0: 1, no shuffle)
	Prefetch           int     // batches prepared ahead on the loader goroutine (default 2)
	CFGDrop            float64 // probability of dropping the text (classifier-free guidance)
	WA, WL             float64 // keyword attention weight (text_knowledge samples) and loss weight on loss_mask cells (visual_knowledge samples)
}

// LoaderState is a position in the data stream: the epoch and how many
// samples of it the global batches have taken (the same on every rank). Restarting a Loader from it gives
// the same batches as going on (the stream is replayed up to there; shuffle
// and CFG-drop randomness are functions of seed, epoch and position).
type LoaderState struct {
	Epoch   int   `json:"epoch"`
	Samples int64 `json:"samples"` // delivered in this epoch
	// Streams are the positions of every stream (LoaderConfig.Streams >
	// 1); a rank's batches carry its own streams' and zeros elsewhere.
	Streams []StreamState `json:"streams,omitempty"`
	// Shard and Row name the input position of the last delivered sample (informational).
	Shard string `json:"shard,omitempty"`
	Row   int    `json:"row"`
}

// StreamState is one stream's position: its epoch and the samples it has
// delivered in it.
type StreamState struct {
	Epoch   int   `json:"epoch"`
	Samples int64 `json:"samples"`
}

// TrainBatch is one batch from the loader.
type TrainBatch struct {
	Latents []float32 // z0 (B, C, h, w)
	Tokens  []int32   // (B, text_ctx)
	Mask    []bool    // (B, text_ctx)
	Keyword []bool    // (B, text_ctx)
	WA      []float32 // (B): w_a for text_knowledge samples, else 0
	Weight  []float32 // (B, h*w): 1 + w_l on loss_mask cells of visual_knowledge samples, else 1
	Keys    []string  // sample keys
	Dropped []bool    // text dropped for CFG
	State   LoaderState
}

// Loader streams batches from training shards on its own goroutine.
type Loader struct {
	cfg    LoaderConfig
	tok    *tokenizer.Tokenizer
	shards []string // all shard URLs, sorted
	ch     chan loadResult
	parent context.Context // NewLoader's: its end is why the loader stopped
	cancel context.CancelFunc
	done   chan struct{}
}

type loadResult struct {
	b   *TrainBatch
	err error
}

// ShardURLs lists the training shards of a data URL: the shards of its
// manifest.json, else every NNNNN.parquet in the folder (not the rejects),
// or the given .parquet file(s).
func ShardURLs(ctx context.Context, data string) ([]string, error) {
	if data == "" {
		return nil, errors.New("train: no data URL")
	}
	if strings.Contains(data, ",") || strings.HasSuffix(strings.SplitN(data, "?", 2)[0], ".parquet") {
		var out []string
		for _, u := range strings.Split(data, ",") {
			if u = strings.TrimSpace(u); u != "" {
				out = append(out, u)
			}
		}
		return out, nil
	}
	b, err := shards.OpenDir(ctx, data, false)
	if err != nil {
		return nil, fmt.Errorf("train: data %s: %w", data, err)
	}
	defer b.Close()
	join := func(name string) string {
		base, q, _ := strings.Cut(data, "?")
		u := strings.TrimRight(base, "/") + "/" + name
		if q != "" {
			u += "?" + q
		}
		return u
	}
	var out []string
	if raw, err := b.ReadAll(ctx, shards.ManifestName); err == nil {
		var m shards.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("train: data %s: manifest.json: %w", data, err)
		}
		for _, s := range m.Shards {
			out = append(out, join(shards.ParquetName(s.ID)))
		}
	} else {
		it := b.List(&blob.ListOptions{})
		for {
			obj, err := it.Next(ctx)
			if err != nil {
				break
			}
			if strings.HasSuffix(obj.Key, ".parquet") && !strings.HasSuffix(obj.Key, "_rejects.parquet") && !strings.Contains(obj.Key, "/") {
				out = append(out, join(obj.Key))
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("train: data %s has no shards (no manifest.json shards and no .parquet files); run kediff preprocess first", data)
	}
	return out, nil
}

// NewLoader lists the shards and starts the loader goroutine at state.
func NewLoader(ctx context.Context, cfg LoaderConfig, tok *tokenizer.Tokenizer, state LoaderState) (*Loader, error) {
	if cfg.Batch <= 0 || cfg.LatentSize <= 0 || cfg.TextCtx <= 0 {
		return nil, fmt.Errorf("train: loader: batch %d, latent size %d, text_ctx %d must be positive", cfg.Batch, cfg.LatentSize, cfg.TextCtx)
	}
	if cfg.Streams > 1 {
		if cfg.Batch%cfg.Streams != 0 {
			return nil, fmt.Errorf("train: loader: the global batch of %d does not split into %d data streams: make batch a multiple of data_streams", cfg.Batch, cfg.Streams)
		}
		if cfg.StreamLo == 0 && cfg.StreamHi == 0 {
			cfg.StreamHi = cfg.Streams
		}
		if cfg.StreamLo < 0 || cfg.StreamLo >= cfg.StreamHi || cfg.StreamHi > cfg.Streams {
			return nil, fmt.Errorf("train: loader: streams [%d, %d) are not among the %d data streams", cfg.StreamLo, cfg.StreamHi, cfg.Streams)
		}
		per := cfg.Batch / cfg.Streams
		cfg.SliceLo, cfg.SliceHi = cfg.StreamLo*per, cfg.StreamHi*per
		if len(state.Streams) != 0 && len(state.Streams) != cfg.Streams {
			return nil, fmt.Errorf("train: loader: the checkpoint's data position has %d streams, the config %d: resume with the data_streams it was trained with", len(state.Streams), cfg.Streams)
		}
	} else if len(state.Streams) > 0 {
		return nil, fmt.Errorf("train: loader: the checkpoint's data position has %d streams, the config one: resume with the data_streams it was trained with", len(state.Streams))
	}
	if cfg.SliceLo == 0 && cfg.SliceHi == 0 {
		cfg.SliceHi = cfg.Batch
	}
	if cfg.SliceLo < 0 || cfg.SliceLo >= cfg.SliceHi || cfg.SliceHi > cfg.Batch {
		return nil, fmt.Errorf("train: loader: slice [%d, %d) is not inside the global batch of %d", cfg.SliceLo, cfg.SliceHi, cfg.Batch)
	}
	if cfg.LatentChans == 0 {
		cfg.LatentChans = 4
	}
	if cfg.ShuffleBuffer <= 0 {
		cfg.ShuffleBuffer = 1
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 2
	}
	urls, err := ShardURLs(ctx, cfg.Data)
	if err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	l := &Loader{cfg: cfg, tok: tok, shards: urls, ch: make(chan loadResult, cfg.Prefetch), parent: parent, cancel: cancel, done: make(chan struct{})}
	go l.run(ctx, state)
	return l, nil
}

// Next returns the next batch (blocking).
func (l *Loader) Next(ctx context.Context) (*TrainBatch, error) {
	select {
	case r, ok := <-l.ch:
		if !ok {
			// The loader's context ended (a cancelled run closes the channel
			// as it ends): report that, not a stopped loader, whichever of
			// the two this select saw first.
			if err := l.parent.Err(); err != nil {
				return nil, err
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("train: loader stopped")
		}
		return r.b, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops the loader goroutine.
func (l *Loader) Close() {
	l.cancel()
	<-l.done
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// streamRow is one decoded row plus its stream position.
type streamRow struct {
	row   *shardRow
	shard string
	index int
}

func (l *Loader) run(ctx context.Context, st LoaderState) {
	defer close(l.done)
	defer close(l.ch)
	send := func(r loadResult) bool {
		select {
		case l.ch <- r:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var err error
	if l.cfg.Streams > 1 {
		err = l.runStreams(ctx, st, send)
	} else {
		err = l.runOne(ctx, st, send)
	}
	if err != nil && ctx.Err() == nil {
		send(loadResult{err: err})
	}
}

// runOne is the single stream every rank walks, keeping its slice of each
// global batch.
func (l *Loader) runOne(ctx context.Context, st LoaderState, send func(loadResult) bool) error {
	c := l.cfg
	var cur *TrainBatch
	inBatch := 0 // position in the global batch being filled
	all := make([]int, len(l.shards))
	for i := range all {
		all[i] = i
	}
	return l.walk(ctx, 0, all, nil, StreamState{Epoch: st.Epoch, Samples: st.Samples}, func(s streamRow, pos StreamState, drop bool) error {
		if cur == nil {
			cur = l.newBatch()
		}
		if inBatch >= c.SliceLo && inBatch < c.SliceHi {
			if err := l.addSample(cur, s, drop); err != nil {
				return err
			}
		}
		inBatch++
		if inBatch == c.Batch {
			cur.State = LoaderState{Epoch: pos.Epoch, Samples: pos.Samples, Shard: s.shard, Row: s.index}
			if !send(loadResult{b: cur}) {
				return ctx.Err()
			}
			cur, inBatch = nil, 0
		}
		return nil
	})
}

// streamItem is one row a stream goroutine hands to the batch assembler.
type streamItem struct {
	row  streamRow
	pos  StreamState // the stream's position after this row
	drop bool
	err  error
}

// runStreams runs this rank's streams on goroutines of their own and builds
// each batch from Batch/Streams rows of each, in stream order.
func (l *Loader) runStreams(ctx context.Context, st LoaderState, send func(loadResult) bool) error {
	c := l.cfg
	per := c.Batch / c.Streams
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chans := make([]chan streamItem, c.StreamHi-c.StreamLo)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the walks return
	for i := range chans {
		sid := c.StreamLo + i
		chans[i] = make(chan streamItem, per)
		var from StreamState
		if len(st.Streams) > 0 {
			from = st.Streams[sid]
		}
		idx, keep := l.streamShards(sid)
		wg.Go(func() {
			err := l.walk(ctx, uint64(sid+1), idx, keep, from, func(s streamRow, pos StreamState, drop bool) error {
				select {
				case chans[i] <- streamItem{row: s, pos: pos, drop: drop}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w (data stream %d of %d)", err, sid, c.Streams)
				select {
				case chans[i] <- streamItem{err: err}:
				case <-ctx.Done():
				}
			}
		})
	}
	pos := make([]StreamState, c.Streams)
	if len(st.Streams) > 0 {
		copy(pos, st.Streams)
	}
	for {
		b := l.newBatch()
		var last streamRow
		for i, ch := range chans {
			for range per {
				var it streamItem
				select {
				case it = <-ch:
				case <-ctx.Done():
					return ctx.Err()
				}
				if it.err != nil {
					return it.err
				}
				if err := l.addSample(b, it.row, it.drop); err != nil {
					return err
				}
				pos[c.StreamLo+i], last = it.pos, it.row
			}
		}
		b.State = LoaderState{Streams: append([]StreamState(nil), pos...), Shard: last.shard, Row: last.index}
		if !send(loadResult{b: b}) {
			return ctx.Err()
		}
	}
}

// streamShards lists stream sid's shards and, where there are fewer shards
// than streams, the filter keeping its rows.
func (l *Loader) streamShards(sid int) ([]int, func(k, i int) bool) {
	S := l.cfg.Streams
	if len(l.shards) < S {
		all := make([]int, len(l.shards))
		for i := range all {
			all[i] = i
		}
		return all, func(k, i int) bool { return (k+i)%S == sid }
	}
	var idx []int
	for k := sid; k < len(l.shards); k += S {
		idx = append(idx, k)
	}
	return idx, nil
}

// walk runs one data stream from position from, for ever: each epoch its
// shards (indices into l.shards) in a seeded order, their rows (those keep
// accepts; nil: all) through a seeded shuffle buffer, calling emit with
// each row, the stream's position after it and its CFG drop. The shuffle
// and drop randomness are functions of the seed, the stream's tag, the
// epoch and the position, so a stream restarted at a position goes on as
// it would have. Tag 0 is the single stream every rank walks.
func (l *Loader) walk(ctx context.Context, tag uint64, shardIdx []int, keep func(k, i int) bool, from StreamState, emit func(streamRow, StreamState, bool) error) error {
	c := l.cfg
	skip := from.Samples
	for epoch := from.Epoch; ; epoch++ {
		delivered := int64(0)
		if epoch != from.Epoch {
			skip = 0
		}
		rng := rand.New(rand.NewPCG(c.Seed^0x6b656469666621, mix64(uint64(epoch)*1000003^tag<<40)))
		order := rng.Perm(len(shardIdx))
		var buf []streamRow
		out := func(s streamRow) error {
			at := delivered
			delivered++
			if at < skip {
				return nil
			}
			h := mix64(c.Seed ^ mix64(uint64(epoch)<<32^uint64(at)^tag<<40))
			drop := float64(h>>11)/(1<<53) < c.CFGDrop
			return emit(s, StreamState{Epoch: epoch, Samples: delivered}, drop)
		}
		push := func(s streamRow) error {
			if len(buf) < c.ShuffleBuffer {
				buf = append(buf, s)
				return nil
			}
			j := rng.IntN(len(buf))
			o := buf[j]
			buf[j] = s
			return out(o)
		}
		var err error
		for _, o := range order {
			k := shardIdx[o]
			err = l.readShard(ctx, l.shards[k], func(r *shardRow, i int) error {
				if keep != nil && !keep(k, i) {
					return nil
				}
				return push(streamRow{row: r, shard: l.shards[k], index: i})
			})
			if err != nil {
				return err
			}
		}
		for len(buf) > 0 {
			j := rng.IntN(len(buf))
			s := buf[j]
			buf[j] = buf[len(buf)-1]
			buf = buf[:len(buf)-1]
			if err := out(s); err != nil {
				return err
			}
		}
		if delivered == 0 {
			return fmt.Errorf("train: no samples in %d shards of %s", len(shardIdx), c.Data)
		}
	}
}

// readShard reads one shard's rows in order.
func (l *Loader) readShard(ctx context.Context, url string, fn func(*shardRow, int) error) error {
	bucketURL, key, err := shards.SplitURL(url)
	if err != nil {
		return fmt.Errorf("train: shard %s: %w", url, err)
	}
	b, err := shards.OpenBucket(ctx, bucketURL)
	if err != nil {
		return fmt.Errorf("train: shard %s: %w", url, err)
	}
	defer b.Close()
	raw, err := b.ReadAll(ctx, key)
	if err != nil {
		return fmt.Errorf("train: shard %s: %w", url, err)
	}
	f, err := shards.OpenParquet(bytes.NewReader(raw), int64(len(raw)), false)
	if err != nil {
		return fmt.Errorf("train: shard %s is corrupt (not a readable Parquet file): %w", url, err)
	}
	if _, ok := f.Schema().Lookup("latent"); !ok {
		return fmt.Errorf("train: shard %s has no latents: enable the vae stage in kediff preprocess (config vae.enabled)", url)
	}
	r := parquet.NewGenericReader[shardRow](f)
	defer r.Close()
	rows := make([]shardRow, 32)
	i := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := shards.ReadRows("train: shard "+url, func() (int, error) { return r.Read(rows) })
		for j := 0; j < n; j++ {
			row := rows[j]
			rows[j] = shardRow{}
			if len(row.Latent) == 0 {
				return fmt.Errorf("train: shard %s has no latents (row %d, key %q): enable the vae stage in kediff preprocess (config vae.enabled)", url, i, row.Key)
			}
			if err := fn(&row, i); err != nil {
				return err
			}
			i++
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("train: shard %s is corrupt at row %d: %w", url, i, rerr)
		}
	}
}

func (l *Loader) newBatch() *TrainBatch {
	c := l.cfg
	c.Batch = c.SliceHi - c.SliceLo
	return &TrainBatch{
		Latents: make([]float32, 0, c.Batch*c.LatentChans*c.LatentSize*c.LatentSize),
		Tokens:  make([]int32, 0, c.Batch*c.TextCtx),
		Mask:    make([]bool, 0, c.Batch*c.TextCtx),
		Keyword: make([]bool, 0, c.Batch*c.TextCtx),
		WA:      make([]float32, 0, c.Batch),
		Weight:  make([]float32, 0, c.Batch*c.LatentSize*c.LatentSize),
	}
}

var classToken = func() map[string]string {
	m := map[string]string{}
	for _, c := range pos.Classes {
		m[c.Name] = c.Token
	}
	return m
}()

// addSample decodes s into batch b.
func (l *Loader) addSample(b *TrainBatch, s streamRow, drop bool) error {
	c := l.cfg
	r := s.row
	where := fmt.Sprintf("shard %s row %d (key %q)", s.shard, s.index, r.Key)
	S := c.LatentSize
	want := []int32{int32(c.LatentChans), int32(S), int32(S)}
	if len(r.LatentShape) != 3 || r.LatentShape[0] != want[0] || r.LatentShape[1] != want[1] || r.LatentShape[2] != want[2] {
		return fmt.Errorf("train: %s: latent shape %v, the model wants %v (image_size %d = image side / 8)", where, r.LatentShape, want, S)
	}
	n := c.LatentChans * S * S
	switch strings.ToLower(r.LatentDType) {
	case "", "float16", "f16", "half":
		if len(r.Latent) != 2*n {
			return fmt.Errorf("train: %s: latent has %d bytes, want %d float16 values", where, len(r.Latent), n)
		}
		for i := range n {
			b.Latents = append(b.Latents, vae.Float32From16(binary.LittleEndian.Uint16(r.Latent[2*i:])))
		}
	case "float32", "f32":
		if len(r.Latent) != 4*n {
			return fmt.Errorf("train: %s: latent has %d bytes, want %d float32 values", where, len(r.Latent), n)
		}
		for i := range n {
			b.Latents = append(b.Latents, math.Float32frombits(binary.LittleEndian.Uint32(r.Latent[4*i:])))
		}
	default:
		return fmt.Errorf("train: %s: unsupported latent dtype %q", where, r.LatentDType)
	}
	// text
	var ids []int32
	var kw []bool
	wa := float32(0)
	switch {
	case drop:
	case len(r.Words) > 0 && len(r.Keyword) == len(r.Words):
		var cls []string
		if r.TextKnowledge && len(r.POS) == len(r.Words) {
			cls = make([]string, len(r.Words))
			for i, p := range r.POS {
				cls[i] = classToken[p]
			}
			wa = float32(c.WA)
		}
		ids, kw = l.tok.EncodeWords(r.Words, r.Keyword, cls)
	case r.TextKnowledge && r.SpecialText != "":
		ids = l.tok.Encode(r.SpecialText)
	default:
		ids = l.tok.Encode(r.Prompt)
	}
	tokens, mask, keyword := tokenizer.Pad(ids, kw, c.TextCtx)
	b.Tokens = append(b.Tokens, tokens...)
	b.Mask = append(b.Mask, mask...)
	b.Keyword = append(b.Keyword, keyword...)
	b.WA = append(b.WA, wa)
	// loss weight
	w0 := len(b.Weight)
	for range S * S {
		b.Weight = append(b.Weight, 1)
	}
	if r.VisualKnowledge && len(r.LossMask) > 0 {
		if len(r.LossMaskShape) != 2 || int(r.LossMaskShape[0]) != S || int(r.LossMaskShape[1]) != S || len(r.LossMask) != S*S {
			return fmt.Errorf("train: %s: loss_mask shape %v (%d bytes) does not match the %dx%d latent grid", where, r.LossMaskShape, len(r.LossMask), S, S)
		}
		for i, v := range r.LossMask {
			if v != 0 {
				b.Weight[w0+i] = float32(1 + c.WL)
			}
		}
	}
	b.Keys = append(b.Keys, r.Key)
	b.Dropped = append(b.Dropped, drop)
	return nil
}

// textRow is the text subset of a shard row (vocabulary building).
type textRow struct {
	Prompt string   `parquet:"prompt"`
	Words  []string `parquet:"words,list"`
}

func (l *Loader) readShardText(ctx context.Context, url string, fn func(*textRow)) error {
	bucketURL, key, err := shards.SplitURL(url)
	if err != nil {
		return fmt.Errorf("train: shard %s: %w", url, err)
	}
	b, err := shards.OpenBucket(ctx, bucketURL)
	if err != nil {
		return fmt.Errorf("train: shard %s: %w", url, err)
	}
	defer b.Close()
	raw, err := b.ReadAll(ctx, key)
	if err != nil {
		return fmt.Errorf("train: shard %s: %w", url, err)
	}
	f, err := shards.OpenParquet(bytes.NewReader(raw), int64(len(raw)), false)
	if err != nil {
		return fmt.Errorf("train: shard %s is corrupt (not a readable Parquet file): %w", url, err)
	}
	r := parquet.NewGenericReader[textRow](f)
	defer r.Close()
	rows := make([]textRow, 64)
	for {
		n, rerr := shards.ReadRows("train: shard "+url, func() (int, error) { return r.Read(rows) })
		for i := range rows[:n] {
			fn(&rows[i])
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("train: shard %s is corrupt: %w", url, rerr)
		}
	}
}
