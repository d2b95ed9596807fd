package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

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
	if *column != "" {
		return posCSV(ctx, in, name, *column, *keyColumn, emit)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if err := emit(strconv.Itoa(n), line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

func posCSV(ctx context.Context, in io.Reader, name, column, keyColumn string, emit func(key, prompt string) error) error {
	r := csv.NewReader(bufio.NewReader(in))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("reading the CSV header of %s: %w", name, err)
	}
	col, keyCol := -1, -1
	for i, h := range header {
		h = strings.TrimPrefix(h, "\ufeff")
		if h == column {
			col = i
		}
		if keyColumn != "" && h == keyColumn {
			keyCol = i
		}
	}
	if col < 0 {
		return fmt.Errorf("%s has no column %q; its columns are %q", name, column, header)
	}
	if keyColumn != "" && keyCol < 0 {
		return fmt.Errorf("%s has no key column %q; its columns are %q", name, keyColumn, header)
	}
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		prompt, key := "", strconv.Itoa(n)
		if col < len(rec) {
			prompt = rec[col]
		}
		if keyCol >= 0 && keyCol < len(rec) {
			key = rec[keyCol]
		}
		if err := emit(key, prompt); err != nil {
			return err
		}
	}
}
