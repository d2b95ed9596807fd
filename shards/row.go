package shards

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Row is one training sample in an output shard, written as one Parquet row.
// Columns are the struct's fields in order, named by their parquet tags; adding
// a column is adding one tagged field (the Hugging Face features and the
// manifest's column list follow by reflection).
//
// Plain fields are REQUIRED columns, so an empty string stays "" and never turns
// into null. Fields tagged "optional" are written as null when zero: use that
// for columns that a sample may lack (Meta) and for the image struct, which
// must be nullable for Hugging Face datasets to recognise it as an Image (a
// pointer, so that a row without one is a null every reader agrees on, not
// a struct of two nulls that datasets refuses to decode).
type Row struct {
	Key          string `parquet:"key"`
	Caption      string `parquet:"caption"`       // the input's caption, unchanged
	Prompt       string `parquet:"prompt"`        // the final training text
	PromptSource string `parquet:"prompt_source"` // "caption" for now; "generated" later
	Image        *Image `parquet:"image,optional"`

	Width          int32 `parquet:"width"` // of the stored image
	Height         int32 `parquet:"height"`
	OriginalWidth  int32 `parquet:"original_width"` // of the input image
	OriginalHeight int32 `parquet:"original_height"`

	SHA256 string `parquet:"sha256"` // hex SHA-256 of the input image's bytes, as img2dataset records it
	Source string `parquet:"source"` // input shard URL + "#" + member, row or file
	Meta   string `parquet:"meta,optional"`

	// Textual knowledge (package pos, DESIGN.md 1.3): the prompt split into
	// words that concatenate back to it, each word's POS class and raw tag,
	// and its keyword flag. TextKnowledge marks the hash-selected samples;
	// SpecialText (a class token before every word) is set for them only.
	Words         []string `parquet:"words,list"`
	POS           []string `parquet:"pos,list"`
	POSRaw        []string `parquet:"pos_raw,list"`
	Keyword       []bool   `parquet:"keyword,list"`
	TextKnowledge bool     `parquet:"text_knowledge"`
	SpecialText   string   `parquet:"special_text"`

	// Visual knowledge (package detect, DESIGN.md 1.4): every detection, with
	// boxes normalised to the stored image; the hash-selected samples that the
	// detector treated; and the loss-weight mask of the kept objects on the
	// latent grid, one byte per cell (1 inside a kept box), row-major, with
	// its shape [H/8, W/8]. Empty when the stage did not run.
	Objects         []Object `parquet:"objects,list"`
	VisualKnowledge bool     `parquet:"visual_knowledge"`
	LossMask        []byte   `parquet:"loss_mask,optional"`
	LossMaskShape   []int32  `parquet:"loss_mask_shape,list"`

	// GeneratedCaption is the captioner's text for the image (package caption);
	// PromptSource says whether Prompt is it ("generated") or the caption.
	GeneratedCaption string `parquet:"generated_caption,optional"`

	// Latent is the autoencoder's latent of the stored image times its
	// scaling factor (package vae): little-endian IEEE float16, C order, of
	// shape LatentShape ([4, H/8, W/8]). Empty when no encoder ran.
	Latent      []byte  `parquet:"latent,optional"`
	LatentShape []int32 `parquet:"latent_shape,list"`
	LatentDType string  `parquet:"latent_dtype,optional"`
}

// Object is one detection in Row.Objects.
type Object struct {
	Label   string  `parquet:"label"`
	LabelZh string  `parquet:"label_zh"`
	Score   float32 `parquet:"score"`
	X0      float32 `parquet:"x0"` // box corners, normalised to [0, 1] of the stored image
	Y0      float32 `parquet:"y0"`
	X1      float32 `parquet:"x1"`
	Y1      float32 `parquet:"y1"`
	Kept    bool    `parquet:"kept"` // eye-catching: weights the loss and may extend the prompt
}

// Image is an encoded image in Hugging Face datasets' Image layout:
// struct<bytes: binary, path: string>. Path is the sample's file name
// (key + "." + extension), so that datasets and pandas users know its format.
type Image struct {
	// Stored uncompressed: encoded images do not shrink under zstd, and
	// compressing them cost ~9% of the pipeline's CPU time.
	Bytes []byte `parquet:"bytes,optional,uncompressed"`
	Path  string `parquet:"path,optional"`
}

// Reject is an input sample that did not become a Row, and why. Every input
// sample ends up exactly once: as a Row or as a Reject.
type Reject struct {
	Key     string `parquet:"key"`
	Index   int64  `parquet:"index"`  // position in the input shard (Sample.Index)
	Source  string `parquet:"source"` // input shard URL + "#" + member, row or file
	Stage   string `parquet:"stage"`  // the stage that rejected it: "read", "image", "text", ...
	Reason  string `parquet:"reason"` // a stable code (see Reason)
	Detail  string `parquet:"detail"` // more for humans
	Caption string `parquet:"caption"`
}

// MaxRejectCaption is how many bytes of a rejected sample's caption the rejects
// file keeps.
const MaxRejectCaption = 1024

// Metadata goes into every output Parquet file's key-value metadata, under
// "kediff.version", "kediff.config" and "kediff.input", so that a shard says
// what made it without any other file.
type Metadata struct {
	Version string // kediff's version
	Config  []byte // the pipeline config as JSON
	Input   string // the input shard URL (empty for the manifest)
	// Extra holds more key-value pairs from the stages, e.g. the POS
	// tagger's dictionaries and class table ("pos.*").
	Extra map[string]string
}

// Key-value metadata keys of the output Parquet files.
const (
	MetaVersion     = "kediff.version"
	MetaConfig      = "kediff.config"
	MetaInput       = "kediff.input"
	MetaHuggingFace = "huggingface"
)

// ErrInvalidUTF8 is wrapped by ShardWriter.Write's error for a row with a
// string that is not valid UTF-8: the pipeline may turn such a sample into a
// Reject instead of failing the shard.
var ErrInvalidUTF8 = errors.New("invalid UTF-8")

// checkUTF8 reports the first of the named strings that is not valid UTF-8.
// Readers (DuckDB, Arrow) refuse such strings in string columns.
func checkUTF8(what, key string, fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if !utf8.ValidString(fields[i+1]) {
			return fmt.Errorf("shards: %s %q: column %s is not valid UTF-8 (repair it with strings.ToValidUTF8 "+
				"or reject the sample before writing): %w", what, strings.ToValidUTF8(key, "\uFFFD"), fields[i], ErrInvalidUTF8)
		}
	}
	return nil
}

// cleanCaption makes s valid UTF-8 (invalid bytes become U+FFFD) and cuts it
// to at most max bytes on a rune boundary.
func cleanCaption(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
