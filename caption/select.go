package caption

import "github.com/kediff/kediff/internal/selection"

// Prompt sources: the values of the prompt_source column.
const (
	SourceCaption   = "caption"   // the input's own caption
	SourceGenerated = "generated" // the captioner's generated_caption
)

// Choose returns the final prompt and its prompt_source: the generated
// caption when selection.Selected(key, seed, fraction) holds and generated is not empty
// (a failed or empty generation never replaces the caption), else the
// original caption.
func Choose(key, caption, generated string, seed uint64, fraction float64) (prompt, source string) {
	if generated != "" && selection.Selected(key, seed, fraction) {
		return generated, SourceGenerated
	}
	return caption, SourceCaption
}
