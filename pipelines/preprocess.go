package pipelines

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/kediff/kediff/imaging"
	"github.com/kediff/kediff/pos"
	"github.com/kediff/kediff/shards"
	"github.com/kediff/kediff/stages"
)

// Version is recorded in every output file; it changes when the rows that a
// given config produces change.
const Version = "kediff-preprocess/0.1.0"

// PreprocessOptions says what to read, where to write and how to run.
type PreprocessOptions struct {
	Input  string // input URL or pattern
	Output string // output folder URL
	Config Config
	Split  Split
	// Progress receives the progress bar; nil runs quietly.
	Progress io.Writer
	Logger   *slog.Logger
	// Observer, if set, watches the run (live metrics).
	Observer Observer
}

// Summary is what one Preprocess run did.
type Summary struct {
	Inputs    int // input shards matched by the pattern
	Owned     int // of those, this worker's
	Skipped   int // of those, already complete
	Processed int // shards written by this run
	Read      int64
	Written   int64
	Rejected  int64
	// Retries and Resumes count the object-store requests retried and the
	// reads resumed in this run (inputs, outputs and the manifest).
	Retries, Resumes int64
	Duration         time.Duration
	Stages           []stages.StageStats
}

// item travels through the preprocessing DAG: one sample, or the marker that
// its input shard has ended after Count samples.
type item struct {
	sample shards.Sample
	row    *shards.Row
	reject *shards.Reject
	img    image.Image // the stored image decoded, for the model stages; dropped before write

	end     bool                // marker: sample.Shard has ended
	count   int                 // marker: samples read from the shard
	start   time.Time           // marker: when reading the shard began
	retries *shards.RetryCounts // marker: the store faults met reading the shard
}

// Progress tells the engine how to count the item on the progress bar.
func (it *item) Progress() (samples, rejects int) {
	switch {
	case it.end:
		return 0, 0
	case it.reject != nil:
		return 1, 1
	}
	return 1, 0
}

func (it *item) rejectAs(stage, reason, detail string) {
	s := &it.sample
	it.reject = &shards.Reject{
		Key:     s.Key,
		Index:   int64(s.Index),
		Source:  s.Source,
		Stage:   stage,
		Reason:  reason,
		Detail:  detail,
		Caption: s.Caption,
	}
	// A rejected sample's image is not needed downstream.
	s.Image = nil
}

// Preprocess runs the preprocessing job: every input shard of this worker
// without a complete output is read, processed and written as one output
// shard, and the dataset manifest is rewritten at the end.
func Preprocess(ctx context.Context, opt PreprocessOptions) (sum Summary, err error) {
	// Credentials in the input and output URLs or the environment never reach
	// a log line or the returned error, whatever a storage driver quotes.
	red := shards.NewRedactor([]string{opt.Input, opt.Output}, shards.EnvSecrets()...)
	defer func() { err = red.Error(err) }()
	begin := time.Now()
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	log = slog.New(&redactHandler{h: log.Handler(), red: red})
	opt.Logger = log
	cfg := opt.Config
	// Every store request of the run retries as the config says; what was
	// retried is counted for the run here and for each shard in its stats.
	faults := &shards.RetryCounts{}
	ctx = shards.WithRetryCounts(shards.WithRetry(ctx, cfg.Store.Options()), faults)
	defer func() {
		retries, resumes, reasons := faults.Snapshot()
		sum.Retries, sum.Resumes = retries, resumes
		if retries+resumes > 0 {
			log.Info("preprocess: object-store faults survived", "retries", retries, "resumes", resumes, "reasons", reasons)
		}
	}()

	// Everything that can fail for the whole run fails here, before any work.
	if err := cfg.validate(); err != nil {
		return sum, fmt.Errorf("config: %w", err)
	}
	imgOpt := cfg.Image.Options()
	if _, err := imaging.NewProcessor(imgOpt); err != nil {
		return sum, fmt.Errorf("config image: %w", err)
	}
	inputs, err := shards.Expand(ctx, opt.Input)
	if err != nil {
		return sum, err
	}
	sum.Inputs = len(inputs)
	out, err := shards.OpenDir(ctx, opt.Output, true)
	if err != nil {
		return sum, err
	}
	defer out.Close()
	if err := checkWritable(ctx, out, opt.Output); err != nil {
		return sum, err
	}
	mine := opt.Split.Filter(inputs)
	sum.Owned = len(mine)
	var todo []shards.Input
	for _, in := range mine {
		done, err := shards.Complete(ctx, out, in.ID)
		if err != nil {
			return sum, err
		}
		if done {
			sum.Skipped++
			continue
		}
		todo = append(todo, in)
	}
	log.Info("preprocess: plan", "input", shards.RedactURL(opt.Input), "output", shards.RedactURL(opt.Output),
		"inputs", len(inputs), "worker", opt.Split.Index, "workers", opt.Split.Count,
		"owned", len(mine), "complete", sum.Skipped, "todo", len(todo),
		"image_backend", imaging.Backend(), "config_hash", cfg.Hash())
	if opt.Observer != nil {
		opt.Observer.Plan(len(mine), sum.Skipped, len(todo))
	}

	md := shards.Metadata{Version: Version, Config: cfg.JSON()}
	if len(todo) > 0 {
		var tagger *pos.Tagger
		if cfg.POS.Enabled {
			// Loading the dictionary takes seconds: only when there is work.
			tagger, err = pos.NewTagger(pos.Config{Fraction: cfg.POS.Fraction, Seed: cfg.POS.Seed,
				UserDicts: cfg.POS.UserDicts, Classes: cfg.POS.Classes})
			if err != nil {
				return sum, fmt.Errorf("config pos: %w", err)
			}
			md.Extra = tagger.Metadata()
		}
		if md.Extra == nil {
			md.Extra = map[string]string{}
		}
		// Models load and check their layout here: a missing or mismatched
		// model stops the run before any sample is read.
		ms, err := openModels(&cfg, md.Extra)
		if err != nil {
			return sum, err
		}
		defer ms.close()
		if err := run(ctx, opt, cfg, imgOpt, tagger, ms, md, out, todo, &sum); err != nil {
			return sum, err
		}
	}
	if _, err := shards.WriteManifest(ctx, out, md); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(begin)
	return sum, nil
}

func run(ctx context.Context, opt PreprocessOptions, cfg Config, imgOpt imaging.Options, tagger *pos.Tagger,
	ms *models, md shards.Metadata, out *blob.Bucket, todo []shards.Input, sum *Summary) error {
	p := stages.New(ctx, stages.Options{
		Name:     "preprocess",
		Progress: opt.Progress,
		Logger:   opt.Logger,
		Queue:    cfg.Workers.Queue,
	})

	// Image bytes travel in recycled buffers: the reader fills them, the
	// image stage returns the input's, the sink the encoded one's.
	bufs := &shards.BufferPool{}
	readOpt := shards.ReadOptions{
		Buffers:        bufs,
		MaxMemberBytes: cfg.Read.MaxMemberBytes,
		ImageColumn:    cfg.Read.ImageColumn,
		CaptionColumn:  cfg.Read.CaptionColumn,
		KeyColumn:      cfg.Read.KeyColumn,
	}
	readers := cfg.Workers.Readers
	if readers <= 0 {
		readers = 2
	}
	read := stages.Source(p, "read", func(ctx context.Context, emit func(*item) error) error {
		// Several input shards are read at once so that a slow blob store
		// does not starve the decoders; each shard's samples stay in order.
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(readers)
		var mu sync.Mutex // emit is called from several readers
		send := func(it *item) error {
			mu.Lock()
			defer mu.Unlock()
			return emit(it)
		}
		for _, in := range todo {
			g.Go(func() error {
				start := time.Now()
				faults := &shards.RetryCounts{}
				n, err := shards.Read(shards.WithRetryCounts(ctx, faults), in, readOpt, func(s shards.Sample) error {
					it := &item{sample: s}
					if s.Reject != "" {
						it.rejectAs("read", string(s.Reject), s.Detail)
					}
					return send(it)
				})
				if err != nil {
					return fmt.Errorf("read %s: %w", shards.RedactURL(in.URL), err)
				}
				if opt.Observer != nil {
					opt.Observer.InputDone(ctx, in)
				}
				return send(&item{sample: shards.Sample{Shard: in.ID}, end: true, count: n, start: start, retries: faults})
			})
		}
		return g.Wait()
	})

	text := stages.Map(p, "text", read, 1, func(ctx context.Context, it *item) (*item, error) {
		if it.end || it.reject != nil {
			return it, nil
		}
		s := &it.sample
		if reason, detail := checkCaption(s.Caption, cfg.Caption.MaxBytes); reason != "" {
			it.rejectAs("text", reason, detail)
		}
		return it, nil
	})

	procs := sync.Pool{New: func() any {
		p, err := imaging.NewProcessor(imgOpt)
		if err != nil {
			panic(err) // validated before the run started
		}
		return p
	}}
	images := stages.Map(p, "image", text, cfg.imageWorkers(), func(ctx context.Context, it *item) (*item, error) {
		if it.end || it.reject != nil {
			return it, nil
		}
		proc := procs.Get().(*imaging.Processor)
		defer procs.Put(proc)
		s := &it.sample
		res, err := proc.Process(s.Image)
		bufs.Put(s.Image)
		s.Image = nil
		if err != nil {
			var rej *imaging.Reject
			if errors.As(err, &rej) {
				it.rejectAs("image", rej.Reason, rej.Detail)
				return it, nil
			}
			return nil, fmt.Errorf("%s: %w", s.Source, err)
		}
		encoded := bufs.Get(len(res.Encoded)) // res.Encoded is the processor's buffer
		copy(encoded, res.Encoded)
		it.row = &shards.Row{
			Key:            s.Key,
			Caption:        s.Caption,
			Prompt:         strings.TrimSpace(s.Caption),
			PromptSource:   "caption",
			Image:          &shards.Image{Bytes: encoded, Path: s.Key + "." + res.Ext},
			Width:          int32(res.Width),
			Height:         int32(res.Height),
			OriginalWidth:  int32(res.OriginalWidth),
			OriginalHeight: int32(res.OriginalHeight),
			SHA256:         res.SHA256,
			Source:         s.Source,
			Meta:           string(s.Meta),
		}
		if ms.any() {
			// Decoded once here, in parallel, for every model stage.
			img, err := decodeStored(encoded)
			if err != nil {
				it.rejectModel(firstModelStage(ms), fmt.Errorf("decode the stored image: %w", err))
				return it, nil
			}
			it.img = img
		}
		return it, nil
	})

	// Captioner (may replace the prompt), then detect (augments the prompt
	// chosen so far), so that POS below tags the final prompt.
	modeled := addModelStages(p, images, &cfg, ms)

	// Textual knowledge of the final prompt: words, POS classes, keyword
	// flags, special text.
	tagged := modeled
	if tagger != nil {
		tagged = stages.Map(p, "pos", modeled, max(1, cfg.Workers.POS), func(ctx context.Context, it *item) (*item, error) {
			if it.end || it.reject != nil {
				return it, nil
			}
			row := it.row
			r := tagger.Analyze(row.Key, row.Prompt)
			row.Words, row.POS, row.POSRaw, row.Keyword = r.Words, r.POS, r.POSRaw, r.Keyword
			row.TextKnowledge, row.SpecialText = r.TextKnowledge, r.SpecialText
			return it, nil
		})
	}

	latents := addVAEStage(p, tagged, &cfg, ms)

	w := newShardSink(out, md, shards.WriterOptions{RowGroupRows: cfg.Output.RowGroupRows}, cfg.Hash(), todo, bufs)
	w.estimate = p.SetTotal
	w.obs = opt.Observer
	stages.Sink(p, "write", latents, 1, w.put)

	if opt.Observer != nil {
		opt.Observer.Start(p)
	}
	err := p.Wait()
	sum.Stages = p.Stats()
	sum.Processed += w.closed
	sum.Read += w.read
	sum.Written += w.written
	sum.Rejected += w.rejected
	if err != nil {
		w.abort()
		return err
	}
	if open := w.open(); open > 0 {
		return fmt.Errorf("preprocess: %d shards still open after the run (a reader ended without its end marker)", open)
	}
	return nil
}

// firstModelStage names the first enabled model stage, which rejects a
// sample whose stored image the models cannot decode.
func firstModelStage(ms *models) string {
	switch {
	case ms.captioner != nil:
		return stageCaptioner
	case ms.detector != nil:
		return stageDetect
	}
	return stageVAE
}

// Options is the imaging package's form of the image section.
func (c ImageConfig) Options() imaging.Options {
	return imaging.Options{
		Size:            c.Size,
		Mode:            imaging.Mode(c.ResizeMode),
		MinImageSize:    c.MinImageSize,
		MaxImageArea:    c.MaxImageArea,
		MaxAspectRatio:  c.MaxAspectRatio,
		MaxDecodePixels: c.MaxDecodePixels,
		Format:          c.Format,
		Quality:         c.Quality,
	}
}
