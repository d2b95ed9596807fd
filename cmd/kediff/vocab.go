package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kediff/kediff/train"
)

func init() {
	register("vocab", "build the tokenizer vocabulary from training shards (vocab build)", runVocab)
}

func runVocab(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "build" {
		return errors.New("usage: kediff vocab build --data URL --output vocab.txt [--min-count N] [--max-size N]")
	}
	fs := flag.NewFlagSet("vocab build", flag.ContinueOnError)
	data := fs.String("data", "", "training shards (folder URL with manifest.json, .parquet URL or comma-separated list)")
	output := fs.String("output", "", "vocabulary file to write, one token per line")
	minCount := fs.Int("min-count", 2, "keep whole words seen at least this often (single characters are always kept)")
	maxSize := fs.Int("max-size", 0, "most tokens in all (the model's n_vocab); 0: no limit")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *data == "" || *output == "" {
		return errors.New("--data and --output are required")
	}
	tok, err := train.BuildVocabFromData(ctx, *data, *minCount, *maxSize)
	if err != nil {
		return err
	}
	if err := tok.WriteVocabFile(*output); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "kediff vocab: %d tokens written to %s\n", tok.Size(), *output)
	return nil
}
