package shards

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"
)

// maxBraceExpansion bounds what one pattern may expand to, so that a typo
// like {0..99999999999} fails at once instead of eating the memory.
const maxBraceExpansion = 1_000_000

// Expand turns an --input pattern into the sorted list of input shards and
// checks, before any work starts, that they can be reached.
//
// A pattern is a blob URL (plain paths mean file://) whose path may hold
//   - brace patterns: numeric ranges {00000..00123} (zero padding kept) and
//     lists {a,b}, several and nested ones too, as the shell expands them;
//   - globs *, ? and [...] matched element by element with path.Match
//     against a listing of the literal prefix;
//   - nothing special: a .tar (.tar.gz, .tgz) or .parquet file, or a folder.
//
// A folder stands for every tar in it (recursively); with no tars, for its
// images, each folder holding images being one folder input; with neither,
// for its Parquet files. That order reads the three layouts img2dataset
// writes (webdataset, files, parquet) without taking its metadata-only
// Parquet files for inputs.
//
// A '?' in an s3:// or gs:// URL starts the query only when a parameter
// name and '=' follow it (?endpoint=...); otherwise it is a glob.
//
// Each Input's ID is its path relative to the pattern's literal prefix,
// extension dropped, '/' turned into '_' (see inputID), so that it stays the
// same when more inputs arrive; two inputs with one ID are an error.
func Expand(ctx context.Context, pattern string) ([]Input, error) {
	p, err := parsePattern(pattern)
	if err != nil {
		return nil, err
	}
	b, err := OpenDir(ctx, p.bucketURL(), false)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if p.scheme != "file" {
		ok, err := b.IsAccessible(ctx)
		if err != nil {
			return nil, blobError("bucket of input "+pattern, err)
		}
		if !ok {
			return nil, fmt.Errorf("shards: input %s: bucket %q does not exist or cannot be reached; check the bucket name, endpoint and region", pattern, p.host)
		}
	}
	pats, err := ExpandBraces(p.path)
	if err != nil {
		return nil, fmt.Errorf("shards: input %s: %w", pattern, err)
	}
	metaBase, hasMeta := literalPrefix(p.path)
	var (
		files   []string // keys of tar/parquet files to check and return
		inputs  []Input
		skipped int
	)
	for _, pat := range pats {
		switch {
		case hasGlob(pat):
			keys, n, err := globKeys(ctx, b, pat)
			if err != nil {
				return nil, blobError("input "+pattern, err)
			}
			files, skipped = append(files, keys...), skipped+n
		case formatOf(pat) != "" && !p.dir:
			files = append(files, pat)
		default:
			base := pat
			if hasMeta {
				base = metaBase
			}
			in, err := scanFolder(ctx, b, p, pat, base)
			if err != nil {
				return nil, err
			}
			inputs = append(inputs, in...)
		}
	}
	if err := checkExist(ctx, b, p, pattern, files); err != nil {
		return nil, err
	}
	for _, key := range files {
		base := metaBase
		if !hasMeta {
			base = path.Dir(key)
		}
		inputs = append(inputs, Input{URL: p.objectURL(key), ID: inputID(key, base), Format: formatOf(key)})
	}
	if len(inputs) == 0 {
		hint := "check the prefix"
		if skipped > 0 {
			hint = fmt.Sprintf("%d matches were neither .tar nor .parquet; name a folder for image inputs", skipped)
		}
		return nil, fmt.Errorf("shards: input %s matched no files; %s", pattern, hint)
	}
	return finishInputs(inputs)
}

// finishInputs sorts inputs, drops repeats and refuses ID collisions.
func finishInputs(inputs []Input) ([]Input, error) {
	sort.Slice(inputs, func(i, j int) bool { return inputs[i].URL < inputs[j].URL })
	out := inputs[:0]
	byID := map[string]string{}
	for i, in := range inputs {
		if i > 0 && in.URL == inputs[i-1].URL {
			continue
		}
		if other, dup := byID[in.ID]; dup {
			return nil, fmt.Errorf("shards: inputs %s and %s would both write output shard %q; rename one or narrow the pattern", other, in.URL, in.ID)
		}
		byID[in.ID] = in.URL
		out = append(out, in)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// checkExist makes sure every literal file is there, in parallel since a
// brace range can name thousands of files and each check is a round trip.
func checkExist(ctx context.Context, b *blob.Bucket, p blobPattern, pattern string, keys []string) error {
	missing := make([]bool, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, key := range keys {
		g.Go(func() error {
			_, err := b.Attributes(gctx, key)
			if gcerrors.Code(err) == gcerrors.NotFound {
				missing[i] = true
				return nil
			}
			if err != nil {
				return blobError("input "+p.objectURL(key), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var names []string
	for i, m := range missing {
		if m {
			names = append(names, p.objectURL(keys[i]))
		}
	}
	switch {
	case len(names) == 0:
		return nil
	case len(keys) == 1:
		return fmt.Errorf("shards: input %s not found; check the path", names[0])
	case len(names) > 5:
		names = append(names[:5], "...")
	}
	n := 0
	for _, m := range missing {
		if m {
			n++
		}
	}
	return fmt.Errorf("shards: input %s: %d of %d files are missing (%s); check the range",
		pattern, n, len(keys), strings.Join(names, ", "))
}

// globKeys lists the keys matching a glob pattern; skipped counts matches
// that are not input files.
func globKeys(ctx context.Context, b *blob.Bucket, pat string) (keys []string, skipped int, err error) {
	els := strings.Split(pat, "/")
	first := 0
	for first < len(els) && !hasGlob(els[first]) {
		first++
	}
	prefix := strings.Join(els[:first], "/")
	if prefix != "" {
		prefix += "/"
	}
	opts := &blob.ListOptions{Prefix: prefix}
	if first == len(els)-1 {
		opts.Delimiter = "/" // only the last element is a glob: no need to recurse
	}
	if _, err := path.Match(pat, ""); err != nil {
		return nil, 0, fmt.Errorf("bad glob %q: %w", pat, err)
	}
	it := b.List(opts)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return keys, skipped, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if obj.IsDir {
			continue
		}
		if ok, _ := path.Match(pat, obj.Key); !ok {
			continue
		}
		if formatOf(obj.Key) == "" {
			skipped++
			continue
		}
		keys = append(keys, obj.Key)
	}
}

// scanFolder turns one folder into inputs: its tars, else its image
// folders, else its Parquet files (see Expand).
func scanFolder(ctx context.Context, b *blob.Bucket, p blobPattern, dir, base string) ([]Input, error) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var tars, parquets []string
	imageDirs := map[string]bool{}
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, blobError("input folder "+p.objectURL(dir), err)
		}
		switch {
		case obj.IsDir:
		case formatOf(obj.Key) == FormatTar:
			tars = append(tars, obj.Key)
		case formatOf(obj.Key) == FormatParquet:
			parquets = append(parquets, obj.Key)
		case isImageName(obj.Key):
			imageDirs[strings.TrimSuffix(path.Dir("/" + obj.Key)[1:], "/")] = true
		}
	}
	var in []Input
	switch {
	case len(tars) > 0:
		for _, k := range tars {
			in = append(in, Input{URL: p.objectURL(k), ID: inputID(k, base), Format: FormatTar})
		}
	case len(imageDirs) > 0:
		for d := range imageDirs {
			id := inputID(d, base)
			if d == base || id == "" {
				id = inputID(path.Base("/"+d), "")
				if d == "" {
					id = "root"
				}
			}
			in = append(in, Input{URL: p.objectURL(d), ID: id, Format: FormatFolder})
		}
	case len(parquets) > 0:
		for _, k := range parquets {
			in = append(in, Input{URL: p.objectURL(k), ID: inputID(k, base), Format: FormatParquet})
		}
	default:
		return nil, fmt.Errorf("shards: input %s not found or holds no .tar, .parquet or image files; check the path", p.objectURL(dir))
	}
	return in, nil
}

// formatOf tells the input format from a file name, or "" for other files.
func formatOf(name string) Format {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar"), strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return FormatTar
	case strings.HasSuffix(n, ".parquet"):
		return FormatParquet
	}
	return ""
}

// inputID derives an output shard name from a key relative to base:
// "in/00012.tar" -> "00012", "in/2024/05/part-3.parquet" -> "2024_05_part-3".
// Only letters, digits, '-', '_' and '.' survive, so that the ID is a safe
// file name on every store.
func inputID(key, base string) string {
	rel := key
	if base = strings.Trim(base, "/"); base != "" && base != "." && strings.HasPrefix(key, base+"/") {
		rel = key[len(base)+1:]
	}
	for _, ext := range []string{".tar.gz", ".tgz", ".tar", ".parquet"} {
		if strings.HasSuffix(strings.ToLower(rel), ext) {
			rel = rel[:len(rel)-len(ext)]
			break
		}
	}
	id := []byte(rel)
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.' && i > 0:
		default:
			id[i] = '_'
		}
	}
	return string(id)
}

// blobPattern is an input pattern split into its parts. The path is kept
// raw (no URL decoding) because it may hold glob and brace characters.
type blobPattern struct {
	scheme, host, query, path string
	dir                       bool // the pattern ended in '/': a folder
}

func parsePattern(raw string) (blobPattern, error) {
	norm, err := normalizeRaw(raw)
	if err != nil {
		return blobPattern{}, err
	}
	if !strings.Contains(raw, "://") && strings.HasSuffix(raw, "/") {
		norm += "/" // filepath.Abs drops it
	}
	i := strings.Index(norm, "://")
	p := blobPattern{scheme: strings.ToLower(norm[:i])}
	rest := norm[i+3:]
	for j := 0; j < len(rest); j++ {
		if rest[j] == '?' && isParamStart(rest[j+1:]) {
			rest, p.query = rest[:j], rest[j+1:]
			break
		}
	}
	if p.scheme == "file" && p.query != "" {
		return p, fmt.Errorf("shards: input %s: file URLs take no parameters", raw)
	}
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		p.host, p.path = rest[:j], rest[j+1:]
	} else {
		p.host = rest
	}
	p.dir = strings.HasSuffix(p.path, "/")
	p.path = strings.Trim(p.path, "/")
	if p.scheme != "file" && p.scheme != "mem" && p.host == "" {
		return p, fmt.Errorf("shards: input %s names no bucket; write %s://BUCKET/PATH", raw, p.scheme)
	}
	return p, nil
}

// isParamStart reports whether s starts like "name=".
func isParamStart(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			return i > 0
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return false
}

func (p blobPattern) bucketURL() string {
	if p.scheme == "file" {
		return "file:///"
	}
	u := url.URL{Scheme: p.scheme, Host: p.host, RawQuery: p.query}
	return u.String()
}

// objectURL is the URL of one key in the pattern's bucket; SplitURL reads
// it back.
func (p blobPattern) objectURL(key string) string {
	u := url.URL{Scheme: p.scheme, Host: p.host, Path: "/" + key, RawQuery: p.query}
	return u.String()
}

func hasGlob(s string) bool { return strings.ContainsAny(s, "*?[") }

// literalPrefix returns the folder part of a pattern before its first
// element with a brace or glob, and whether there is such an element.
func literalPrefix(pat string) (string, bool) {
	els := strings.Split(pat, "/")
	for i, el := range els {
		if strings.ContainsAny(el, "{*?[") {
			return strings.Join(els[:i], "/"), true
		}
	}
	return "", false
}

// ExpandBraces expands shell-style braces: {a,b} lists and {N..M} numeric
// ranges (optionally {N..M..STEP}), nested and several per pattern, in the
// shell's order. A range keeps zero padding when an end is written with it:
// {00000..00123} gives 00000, 00001, ..., 00123. Braces with neither a
// comma nor a range stay literal.
func ExpandBraces(s string) ([]string, error) {
	out := []string{}
	var walk func(s string, from int) error
	walk = func(s string, from int) error {
		open, close, parts := findBrace(s, from)
		if open < 0 {
			out = append(out, s)
			if len(out) > maxBraceExpansion {
				return fmt.Errorf("braces expand to over %d names; split the input", maxBraceExpansion)
			}
			return nil
		}
		if len(parts) == 1 {
			seq, ok, err := braceRange(parts[0])
			if err != nil {
				return err
			}
			if !ok {
				return walk(s, open+1) // "{x}" stays; braces inside it still expand
			}
			parts = seq
		}
		pre, post := s[:open], s[close+1:]
		for _, alt := range parts {
			// Rescan from the group's start: alt may hold nested groups.
			if err := walk(pre+alt+post, open); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(s, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// findBrace finds the first balanced {...} group at or after from and splits
// its content at top-level commas; open is -1 when there is none.
func findBrace(s string, from int) (open, close int, parts []string) {
	for open = from; open < len(s); open++ {
		if s[open] != '{' {
			continue
		}
		depth, start := 0, open+1
		parts = parts[:0]
		for i := open; i < len(s); i++ {
			switch s[i] {
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					return open, i, append(parts, s[start:i])
				}
			case ',':
				if depth == 1 {
					parts = append(parts, s[start:i])
					start = i + 1
				}
			}
		}
	}
	return -1, -1, nil
}

// braceRange expands "N..M" or "N..M..STEP"; ok is false for other text.
func braceRange(s string) (seq []string, ok bool, err error) {
	f := strings.Split(s, "..")
	if len(f) != 2 && len(f) != 3 {
		return nil, false, nil
	}
	nums := make([]int64, len(f))
	for i, x := range f {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, false, nil
		}
		nums[i] = n
	}
	step := int64(1)
	if len(f) == 3 && nums[2] != 0 {
		step = max(nums[2], -nums[2])
	}
	from, to := nums[0], nums[1]
	if (to-from)/step >= maxBraceExpansion || (from-to)/step >= maxBraceExpansion {
		return nil, false, fmt.Errorf("range {%s} has over %d values; split the input", s, maxBraceExpansion)
	}
	width := 0
	for _, x := range f[:2] {
		d := strings.TrimPrefix(x, "-")
		if len(d) > 1 && d[0] == '0' {
			width = max(width, len(x))
		}
	}
	if from > to {
		step = -step
	}
	for n := from; (step > 0 && n <= to) || (step < 0 && n >= to); n += step {
		seq = append(seq, pad(n, width))
	}
	return seq, true, nil
}

func pad(n int64, width int) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
		width--
	}
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	if neg {
		s = "-" + s
	}
	return s
}
