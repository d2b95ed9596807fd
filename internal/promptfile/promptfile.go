// Package promptfile reads prompts from a text file (one a line) or from a
// column of a CSV file with a header row, as kediff pos and kediff sample take
// them: a UTF-8 BOM and CRLF line ends are dropped, and CSV fields may be
// quoted and hold newlines (RFC 4180; ViLG-300 is such a file).
package promptfile

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Each calls emit for every prompt of in, named name in errors. With column
// set, in is CSV and prompts come from that column, keyed by keyColumn (or
// the row number from 1); otherwise each line is a prompt keyed by its line
// number from 1.
func Each(ctx context.Context, in io.Reader, name, column, keyColumn string, emit func(key, prompt string) error) error {
	if column != "" {
		return eachCSV(ctx, in, name, column, keyColumn, emit)
	}
	if keyColumn != "" {
		return fmt.Errorf("%s: a key column needs a CSV column", name)
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

func eachCSV(ctx context.Context, in io.Reader, name, column, keyColumn string, emit func(key, prompt string) error) error {
	r := csv.NewReader(bufio.NewReader(in))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("reading the CSV header of %s: %w", name, err)
	}
	col, keyCol := -1, -1
	for i, h := range header {
		h = strings.TrimPrefix(h, "\ufeff")
		header[i] = h
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
