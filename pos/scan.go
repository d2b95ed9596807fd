package pos

import (
	"unicode"
	"unicode/utf8"
)

// runeKind is the coarse category of one rune that decides which part of the stage
// handles it.
type runeKind uint8

const (
	rkSymbol  runeKind = iota // S*, private use, unassigned: emoji, ©, +
	rkSpace                   // unicode.IsSpace, full-width space included
	rkPunct                   // P*
	rkLatin                   // Latin-script letters, full-width ones included
	rkLetter                  // other letters: Han, kana, Hangul, Cyrillic, ...
	rkDigit                   // N*: 0-9, full-width digits, 〇, Ⅻ, ①
	rkMark                    // combining marks, ZWJ, ZWNJ, variation selectors
	rkControl                 // Cc, Cf, invalid UTF-8 bytes
)

var asciiKind [128]runeKind

func init() {
	for r := rune(0); r < 128; r++ {
		asciiKind[r] = slowKind(r)
	}
}

func kindOf(r rune, size int) runeKind {
	if r < 128 {
		return asciiKind[r]
	}
	if r >= 0x4E00 && r <= 0x9FFF { // CJK unified ideographs: the common case
		return rkLetter
	}
	if r == utf8.RuneError && size == 1 {
		return rkControl
	}
	return slowKind(r)
}

func slowKind(r rune) runeKind {
	switch {
	case unicode.IsSpace(r):
		return rkSpace
	case r == 0x200C || r == 0x200D || unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc):
		return rkMark
	case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
		return rkControl
	case unicode.IsLetter(r):
		if unicode.Is(unicode.Latin, r) {
			return rkLatin
		}
		return rkLetter
	case unicode.IsNumber(r):
		return rkDigit
	case unicode.IsPunct(r):
		return rkPunct
	}
	return rkSymbol
}

// spanKind says how a span of the prompt is tagged.
type spanKind uint8

const (
	spSpace   spanKind = iota
	spCJK              // letters other than Latin (maybe with Latin and digits): gse
	spLatin            // Latin letters (maybe with digits): English tagger
	spNumber           // digits with inner separators: numeral
	spPunct            // one punctuation rune, or a run of the same one
	spEntity           // an HTML entity as written: &amp; &#39; &#x27;
	spSymbol           // symbols and emoji with their joiners and modifiers
	spControl          // control characters, invalid bytes, stray marks
)

// nextSpan returns the kind and end of the span that starts at byte i of s.
func nextSpan(s string, i int) (spanKind, int) {
	r, size := utf8.DecodeRuneInString(s[i:])
	k := kindOf(r, size)
	j := i + size
	switch k {
	case rkSpace:
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if kindOf(r, size) != rkSpace {
				break
			}
			j += size
		}
		return spSpace, j
	case rkPunct:
		if r == '&' {
			if e := entityEnd(s, i); e > 0 {
				return spEntity, e
			}
		}
		for j < len(s) {
			r2, size := utf8.DecodeRuneInString(s[j:])
			if r2 != r {
				break
			}
			j += size
		}
		return spPunct, j
	case rkSymbol:
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if k := kindOf(r, size); k != rkSymbol && k != rkMark {
				break
			}
			j += size
		}
		return spSymbol, j
	case rkControl:
		for j < len(s) {
			r, size := utf8.DecodeRuneInString(s[j:])
			if kindOf(r, size) != rkControl {
				break
			}
			j += size
		}
		return spControl, j
	}
	// A text run: letters, digits and marks, with connectors inside words
	// ("don't", "red-haired", "3.5", "1,000").
	var latin, other, digit bool
	prev := k
	note := func(k runeKind) {
		switch k {
		case rkLatin:
			latin = true
		case rkLetter:
			other = true
		case rkDigit:
			digit = true
		}
	}
	note(k)
loop:
	for j < len(s) {
		r, size := utf8.DecodeRuneInString(s[j:])
		k := kindOf(r, size)
		switch k {
		case rkLatin, rkLetter, rkDigit, rkMark:
			note(k)
			if k != rkMark {
				prev = k
			}
			j += size
			continue
		case rkPunct:
			if j+size < len(s) {
				r2, size2 := utf8.DecodeRuneInString(s[j+size:])
				next := kindOf(r2, size2)
				if (prev == rkLatin && next == rkLatin && isWordJoiner(r)) ||
					(prev == rkDigit && next == rkDigit && isNumberJoiner(r)) {
					j += size
					continue
				}
			}
		}
		break loop
	}
	switch {
	case other:
		return spCJK, j
	case latin:
		return spLatin, j
	case digit:
		return spNumber, j
	}
	return spControl, j // marks alone
}

func isWordJoiner(r rune) bool {
	return r == '\'' || r == '\u2019' || r == '-' || r == '\u2010'
}

func isNumberJoiner(r rune) bool {
	return r == '.' || r == ',' || r == ':' || r == '\uff0e'
}

// entityEnd returns the end of the HTML entity at s[i] ('&'), or 0 when there is
// none: &name; (2 to 10 ASCII letters or digits, starting with a letter), &#123;,
// &#x1F600;.
func entityEnd(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '#' {
		j++
		hex := j < len(s) && (s[j] == 'x' || s[j] == 'X')
		if hex {
			j++
		}
		start := j
		for j < len(s) && j-start < 8 && (isDigit(s[j]) || hex && isHexLetter(s[j])) {
			j++
		}
		if j > start && j < len(s) && s[j] == ';' {
			return j + 1
		}
		return 0
	}
	start := j
	for j < len(s) && j-start < 10 && (isAlpha(s[j]) || j > start && isDigit(s[j])) {
		j++
	}
	if j-start >= 2 && j < len(s) && s[j] == ';' {
		return j + 1
	}
	return 0
}

func isDigit(b byte) bool     { return b >= '0' && b <= '9' }
func isAlpha(b byte) bool     { return b|0x20 >= 'a' && b|0x20 <= 'z' }
func isHexLetter(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'f' }
