package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kediff/kediff/internal/promptfile"
	"github.com/kediff/kediff/pos"
)

func init() {
	register("pos", "tag prompts with POS classes, keyword flags and special tokens (JSON lines)", runPOS)
}

// posLine is one output line of "kediff pos": the shard columns of the POS stage.
type posLine struct {
	Key           string   `json:"key"`
	Prompt        string   `json:"prompt"`
	Words         []string `json:"words"`
	POS           []string `json:"pos"`
	POSRaw        []string `json:"pos_raw"`
	Keyword       []bool   `json:"keyword"`
	TextKnowledge bool     `json:"text_knowledge"`
	SpecialText   string   `json:"special_text"`
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runPOS(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pos", flag.ContinueOnError)
	input := fs.String("input", "", "file of prompts, one per line (default: stdin)")
	column := fs.String("csv-column", "", "read --input as CSV (header row) and take prompts from this column")
	keyColumn := fs.String("key-column", "", "with --csv-column: the column holding sample keys (default: the row number)")
	var dicts stringList
	fs.Var(&dicts, "pos-dict", "user dictionary, one \"word freq tag\" a line (repeatable)")
	fraction := fs.Float64("fraction", pos.DefaultFraction, "fraction of samples that get special text, chosen by a hash of key and seed")
	seed := fs.Uint64("seed", 0, "seed of the selection hash")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kediff pos [flags] < prompts.txt\n\nPrints one JSON line per prompt: key, prompt, words, pos, pos_raw, keyword,\ntext_knowledge, special_text. Keys are line (or row) numbers from 1.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; give the prompts with --input FILE or on stdin", fs.Arg(0))
	}
	if *keyColumn != "" && *column == "" {
		return errors.New("--key-column needs --csv-column")
	}
	tagger, err := pos.NewTagger(pos.Config{Fraction: *fraction, Seed: *seed, UserDicts: dicts})
	if err != nil {
		return err
	}
	var in io.Reader = os.Stdin
	name := "stdin"
	if *input != "" {
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, *input
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	emit := func(key, prompt string) error {
		r := tagger.Analyze(key, prompt)
		return enc.Encode(posLine{key, prompt, r.Words, r.POS, r.POSRaw, r.Keyword, r.TextKnowledge, r.SpecialText})
	}
	return promptfile.Each(ctx, in, name, *column, *keyColumn, emit)
}
