package inspect

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kediff/kediff/shards"
	"github.com/parquet-go/parquet-go"
)

// scanRow is what the pass over every row reads: all of a Row but the
// image and the latent, whose bytes are most of a shard. Columns that a
// shard lacks stay zero (see columns).
type scanRow struct {
	Key              string          `parquet:"key"`
	Caption          string          `parquet:"caption"`
	Prompt           string          `parquet:"prompt"`
	PromptSource     string          `parquet:"prompt_source"`
	Width            int32           `parquet:"width"`
	Height           int32           `parquet:"height"`
	OriginalWidth    int32           `parquet:"original_width"`
	OriginalHeight   int32           `parquet:"original_height"`
	Source           string          `parquet:"source"`
	Words            []string        `parquet:"words,list"`
	POS              []string        `parquet:"pos,list"`
	POSRaw           []string        `parquet:"pos_raw,list"`
	Keyword          []bool          `parquet:"keyword,list"`
	TextKnowledge    bool            `parquet:"text_knowledge"`
	SpecialText      string          `parquet:"special_text"`
	Objects          []shards.Object `parquet:"objects,list"`
	VisualKnowledge  bool            `parquet:"visual_knowledge"`
	LossMask         []byte          `parquet:"loss_mask,optional"`
	LossMaskShape    []int32         `parquet:"loss_mask_shape,list"`
	GeneratedCaption *string         `parquet:"generated_caption,optional"`
	LatentShape      []int32         `parquet:"latent_shape,list"`
	LatentDType      *string         `parquet:"latent_dtype,optional"`
}

// imageRow is what the second pass reads of a shown sample.
type imageRow struct {
	Image shards.Image `parquet:"image,optional"`
}

var (
	scanSchema  = parquet.SchemaOf(scanRow{})
	imageSchema = parquet.SchemaOf(imageRow{})
)

// optionalColumns are the columns the report shows that a shard may lack
// (made by another writer or an older kediff), with what is missing then.
var optionalColumns = []struct{ name, what string }{
	{"caption", "the original caption"},
	{"prompt", "the final prompt"},
	{"prompt_source", "the prompt's source"},
	{"generated_caption", "the generated caption (captioner)"},
	{"width", "the stored image size"},
	{"height", "the stored image size"},
	{"words", "the words (POS stage)"},
	{"pos", "the words' POS classes"},
	{"keyword", "the keyword flags"},
	{"special_text", "the special text"},
	{"objects", "the detections (detect stage)"},
	{"loss_mask", "the loss mask"},
	{"loss_mask_shape", "the loss mask's shape"},
	{"latent", "the latent (vae stage)"},
}

// columns is what one shard file has of the columns the report reads.
type columns struct {
	// scan is scanSchema cut down to the columns the file has with the
	// same layout; image reads the image column.
	scan, image *parquet.Schema
	has         map[string]bool
	// odd lists the columns the file has in another layout, left unread.
	odd []string
}

// columnsOf checks that a file's schema is a kediff shard's (it has key and
// image.bytes) and works out which of the other columns it has.
func columnsOf(file *parquet.Schema) (columns, error) {
	c := columns{has: map[string]bool{}}
	var missing []string
	if !sameLeaves(file, scanSchema, "key") {
		missing = append(missing, "key (string)")
	}
	if !sameLeaves(file, imageSchema, "image") {
		missing = append(missing, "image (struct<bytes: binary, path: string>)")
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("it has no %s column; its columns are %s%s",
			strings.Join(missing, " and no "), columnList(file), hint(file))
	}
	group := parquet.Group{}
	for _, f := range scanSchema.Fields() {
		name := f.Name()
		if !hasField(file, name) {
			continue
		}
		if !sameLeaves(file, scanSchema, name) {
			c.odd = append(c.odd, name)
			continue
		}
		group[name] = f
		c.has[name] = true
	}
	c.has["image"] = true
	c.has["latent"] = hasField(file, "latent")
	c.scan = parquet.NewSchema("scan", group)
	c.image = imageSchema
	return c, nil
}

// hint guesses what a Parquet file that is not a kediff shard is.
func hint(file *parquet.Schema) string {
	switch {
	case hasField(file, "reason") && hasField(file, "stage"):
		return " (a rejects file: give its NNNNN.parquet or the folder)"
	case hasField(file, "jpg") || hasField(file, "png") || hasField(file, "webp") ||
		(hasField(file, "image") && (hasField(file, "text") || hasField(file, "caption"))):
		return " (an input shard of images and captions? make training shards from it with kediff preprocess --input, then inspect those)"
	}
	return " (kediff inspect reads the NNNNN.parquet files that kediff preprocess writes)"
}

func hasField(s *parquet.Schema, name string) bool {
	return slices.ContainsFunc(s.Fields(), func(f parquet.Field) bool { return f.Name() == name })
}

// columnList names a schema's top-level columns, the first 20.
func columnList(s *parquet.Schema) string {
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name())
	}
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 20 {
		names = append(names[:20], fmt.Sprintf("... (%d in all)", len(names)))
	}
	return strings.Join(names, ", ")
}

// sameLeaves reports whether file has every leaf of want's column name
// with the same physical type and nesting (optional or required aside).
func sameLeaves(file, want *parquet.Schema, name string) bool {
	var node parquet.Node
	for _, f := range want.Fields() {
		if f.Name() == name {
			node = f
		}
	}
	if node == nil || !hasField(file, name) {
		return false
	}
	ok := true
	forLeaves(node, []string{name}, func(path []string, leaf parquet.Node) {
		got, found := file.Lookup(path...)
		if !found || got.Node.Type().Kind() != leaf.Type().Kind() {
			ok = false
		}
	})
	return ok
}

func forLeaves(n parquet.Node, path []string, fn func([]string, parquet.Node)) {
	if n.Leaf() {
		fn(path, n)
		return
	}
	for _, f := range n.Fields() {
		forLeaves(f, append(slices.Clip(path), f.Name()), fn)
	}
}
