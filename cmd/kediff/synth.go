package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/kediff/kediff/synth"
)

func init() {
	register("synth", "generate the bundled sample: coloured shapes with Chinese and English captions as WebDataset tars", runSynth)
}

func runSynth(ctx context.Context, args []string) error {
	d := synth.DefaultOptions()
	fs := flag.NewFlagSet("synth", flag.ContinueOnError)
	output := fs.String("output", "", "output folder URL for the tar shards (file://, s3://, gs://, azblob://, mem://, or a path)")
	samples := fs.Int("samples", d.Samples, "number of good samples")
	perShard := fs.Int("per-shard", d.PerShard, "samples per tar shard")
	width := fs.Int("width", d.Width, "image width in pixels")
	height := fs.Int("height", d.Height, "image height in pixels")
	seed := fs.Uint64("seed", d.Seed, "random seed; equal flags give byte-identical shards")
	quality := fs.Int("quality", d.Quality, "JPEG quality, 1..100")
	lang := fs.String("lang", d.Lang, "language of the .txt captions: mixed (2/3 Chinese), zh or en")
	photo := fs.Bool("photo", d.Photo, "busy photo-like backgrounds (--photo=false: flat)")
	mix := fs.String("object-mix", "", "relative weights of 1-, 2- and 3-object scenes, e.g. 1,2,1 (default: uniform)")
	bad := fs.Bool("bad", true, "append deliberately broken samples to the last shard, to exercise the rejects path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *output == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("need --output (and no positional arguments)")
	}
	opt := synth.Options{
		Samples: *samples, PerShard: *perShard, Width: *width, Height: *height,
		Seed: *seed, Quality: *quality, Lang: *lang, Photo: *photo, BadSamples: *bad,
	}
	if *mix != "" {
		var err error
		if opt.ObjectMix, err = synth.ParseObjectMix(*mix); err != nil {
			return fmt.Errorf("--object-mix: %w", err)
		}
	}
	sum, err := synth.Generate(ctx, *output, opt)
	if err != nil {
		return err
	}
	fmt.Printf("synth: wrote %d samples + %d broken in %d shards (%d bytes, %dx%d) to %s\n",
		sum.Samples, sum.Bad, len(sum.Shards), sum.Bytes, sum.Options.Width, sum.Options.Height, *output)
	return nil
}
