package clipscore

import (
	"html"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizeOpenCLIP cleans a prompt as open_clip's tokenizer does before
// splitting it (clean="lower"): ftfy.fix_text, HTML unescaping twice,
// whitespace runs to one space, trimmed, lower-cased. Of ftfy it does the
// fixes that change ordinary prompts (see fixText); package doc lists what
// it leaves out.
func normalizeOpenCLIP(s string) string {
	s = fixText(s)
	s = html.UnescapeString(html.UnescapeString(s))
	return pyLower(strings.Join(strings.FieldsFunc(s, pySpace), " "))
}

// normalizeHF is the normalizer of Hugging Face's CLIPTokenizerFast: NFC,
// whitespace runs to one space, lower case. It does no ftfy and no HTML
// unescaping.
func normalizeHF(s string) string {
	s = norm.NFC.String(s)
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return pyLower(b.String())
}

// pySpace is Python's str.isspace, which str.split and str.strip use: Go's
// unicode.IsSpace plus the ASCII separators U+001C to U+001F.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

// pyLower is Python's str.lower as far as prompts meet it: simple case
// mapping plus the one-to-two mapping of 'İ' (U+0130). The final-sigma rule
// is left out: 'Σ' always becomes 'σ'.
func pyLower(s string) string {
	if !strings.ContainsRune(s, 'İ') {
		return strings.ToLower(s)
	}
	return strings.ToLower(strings.ReplaceAll(s, "İ", "i\u0307"))
}

// fixText does the parts of ftfy.fix_text (ftfy 6, default settings) that
// change well-formed prompts, repeated as ftfy repeats them until nothing
// changes: HTML entities when the text has no '<', Latin ligatures, full-
// and half-width forms, curly quotes, invisible control characters, and
// NFC. Mojibake repair (fix_encoding, fix_c1_controls) and terminal escape
// removal are not done; see the package doc.
func fixText(s string) string {
	unescape := !strings.Contains(s, "<")
	for {
		orig := s
		if unescape {
			s = html.UnescapeString(s)
		}
		var b strings.Builder
		for _, r := range s {
			switch {
			case ligatures[r] != "":
				b.WriteString(ligatures[r])
			case r == 0x3000:
				b.WriteByte(' ')
			case r >= 0xFF01 && r < 0xFFF0:
				b.WriteString(norm.NFKC.String(string(r)))
			case r == 0x02BC || r >= 0x2018 && r <= 0x201B:
				b.WriteByte('\'')
			case r >= 0x201C && r <= 0x201F:
				b.WriteByte('"')
			case invisibleControl(r):
			default:
				b.WriteRune(r)
			}
		}
		s = norm.NFC.String(b.String())
		if s == orig {
			return s
		}
	}
}

// ligatures is ftfy's fix_latin_ligatures table.
var ligatures = map[rune]string{
	'Ĳ': "IJ", 'ĳ': "ij", 'ŉ': "ʼn", 'Ǳ': "DZ", 'ǲ': "Dz", 'ǳ': "dz",
	'Ǆ': "DŽ", 'ǅ': "Dž", 'ǆ': "dž", 'Ǉ': "LJ", 'ǈ': "Lj", 'ǉ': "lj",
	'Ǌ': "NJ", 'ǋ': "Nj", 'ǌ': "nj", 'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl",
	'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "ſt", 'ﬆ': "st",
}

// invisibleControl reports the characters ftfy's remove_control_chars
// drops: C0 controls other than tab, line feed, form feed and carriage
// return, DEL, deprecated format characters, the byte-order mark,
// and interlinear annotation marks.
func invisibleControl(r rune) bool {
	switch {
	case r <= 0x08, r == 0x0B, r >= 0x0E && r <= 0x1F, r == 0x7F:
		return true
	case r >= 0x206A && r <= 0x206F, r == 0xFEFF, r >= 0xFFF9 && r <= 0xFFFC:
		return true
	}
	return false
}
