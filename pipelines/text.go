package pipelines

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Caption reject reasons.
const (
	reasonCaptionEmpty   = "caption_empty"
	reasonCaptionUTF8    = "caption_invalid_utf8"
	reasonCaptionTooLong = "caption_too_long"
)

// checkCaption returns a reject reason and detail for a caption that cannot
// train anything, or "" when the caption is usable. Control characters and
// odd spacing are left for the text stages, which must cope with them.
func checkCaption(caption string, maxBytes int) (reason, detail string) {
	switch {
	case len(caption) > maxBytes:
		return reasonCaptionTooLong, fmt.Sprintf("caption has %d bytes, limit caption.max_bytes is %d", len(caption), maxBytes)
	case !utf8.ValidString(caption):
		return reasonCaptionUTF8, "caption is not valid UTF-8"
	case strings.TrimSpace(caption) == "":
		return reasonCaptionEmpty, "caption is empty or only whitespace"
	}
	return "", ""
}
