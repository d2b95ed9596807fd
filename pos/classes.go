package pos

import (
	"fmt"
	"sort"
	"strings"
)

// Class is one POS class: the name stored in the pos column, the special token that
// SpecialText puts before its words, and whether its words are keywords.
type Class struct {
	Name        string
	Token       string
	Keyword     bool
	Description string
}

// Classes is the fixed set of POS classes, in a stable order. A trainer adds the
// tokens to its vocabulary.
var Classes = []Class{
	{"noun", "[n]", true, "nouns, proper nouns, abbreviations, place words, set phrases"},
	{"verb", "[v]", true, "verbs, auxiliaries, verbal nouns"},
	{"adjective", "[a]", true, "adjectives, distinguishing and state words, idioms"},
	{"numeral", "[m]", true, "numerals, numbers written in digits (with a trailing %)"},
	{"quantifier", "[q]", true, "measure words (classifiers)"},
	{"pronoun", "[r]", true, "pronouns, demonstratives"},
	{"adverb", "[d]", false, "adverbs"},
	{"preposition", "[p]", false, "prepositions"},
	{"conjunction", "[c]", false, "conjunctions"},
	{"particle", "[u]", false, "structural, aspect and modal particles"},
	{"locality", "[f]", false, "locality words (上, 之后, 北部)"},
	{"time", "[t]", false, "time words"},
	{"punctuation", "[w]", false, "punctuation, HTML entities"},
	{"other", "[x]", false, "interjections, onomatopoeia, affixes, morphemes, determiners, symbols, emoji, unknown"},
}

// class indexes into Classes.
type class uint8

const (
	cNoun class = iota
	cVerb
	cAdjective
	cNumeral
	cQuantifier
	cPronoun
	cAdverb
	cPreposition
	cConjunction
	cParticle
	cLocality
	cTime
	cPunctuation
	cOther
)

// defaultTable maps raw tags (ICTCLAS/jieba lower case, Penn upper case) to classes.
// Tags not listed fall back to firstLetter.
var defaultTable = map[string]class{
	// ICTCLAS / jieba tags whose first letter would mislead.
	// j abbreviations, s place words (国内, 岛上) and l set phrases (有轨电车) are
	// nominal; b distinguishing words (大型), z state words (绿油油) and i idioms
	// (栩栩如生) describe, so they count as adjectives.
	"j": cNoun, "s": cNoun, "l": cNoun, "b": cAdjective, "z": cAdjective, "i": cAdjective,
	"y": cParticle, "eng": cOther, "w": cPunctuation, "x": cOther,
	// Penn Treebank (prose).
	"NN": cNoun, "NNS": cNoun, "NNP": cNoun, "NNPS": cNoun,
	"VB": cVerb, "VBD": cVerb, "VBG": cVerb, "VBN": cVerb, "VBP": cVerb, "VBZ": cVerb, "MD": cVerb,
	"JJ": cAdjective, "JJR": cAdjective, "JJS": cAdjective,
	"CD":  cNumeral,
	"PRP": cPronoun, "PRP$": cPronoun, "WP": cPronoun, "WP$": cPronoun, "EX": cPronoun,
	"DT": cOther, "PDT": cOther, "WDT": cOther,
	"RB": cAdverb, "RBR": cAdverb, "RBS": cAdverb, "WRB": cAdverb,
	"IN": cPreposition, "TO": cPreposition,
	"CC": cConjunction,
	"RP": cParticle, "POS": cParticle,
	".": cPunctuation, ",": cPunctuation, ":": cPunctuation, "(": cPunctuation, ")": cPunctuation,
	"``": cPunctuation, "''": cPunctuation, "\"": cPunctuation, "#": cPunctuation, "$": cPunctuation,
	"SYM": cPunctuation, "-": cPunctuation,
	"UH": cOther, "FW": cOther, "LS": cOther, "-NONE-": cOther,
}

// firstLetter classes an ICTCLAS tag not in the table by its first letter.
var firstLetter = map[byte]class{
	'n': cNoun, 'v': cVerb, 'a': cAdjective, 'm': cNumeral, 'q': cQuantifier, 'r': cPronoun,
	'd': cAdverb, 'p': cPreposition, 'c': cConjunction, 'u': cParticle, 'f': cLocality,
	't': cTime, 'w': cPunctuation,
}

// classTable is the effective raw tag -> class mapping of one Tagger.
type classTable struct {
	exact map[string]class
	short *[128][129]class // tags of one or two ASCII bytes: short[a][b], b = 128 for none
}

func newClassTable(overrides map[string]string) (classTable, error) {
	exact := make(map[string]class, len(defaultTable)+len(overrides))
	for k, v := range defaultTable {
		exact[k] = v
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, tag := range keys {
		name := overrides[tag]
		c, ok := classByName(name)
		if !ok {
			return classTable{}, fmt.Errorf("pos: class table: tag %q maps to %q, which is not a class; want one of %s", tag, name, classNames())
		}
		if tag == "" {
			return classTable{}, fmt.Errorf("pos: class table: empty tag (maps to %q); give the raw tagger tag, e.g. \"nz\" or \"NNP\"", name)
		}
		exact[tag] = c
	}
	t := classTable{exact: exact}
	short := new([128][129]class)
	for a := 0; a < 128; a++ {
		short[a][128] = t.lookup(string(rune(a)))
		for b := 0; b < 128; b++ {
			short[a][b] = t.lookup(string([]byte{byte(a), byte(b)}))
		}
	}
	t.short = short
	return t, nil
}

func (t classTable) of(raw string) class {
	if t.short != nil {
		switch {
		case len(raw) == 1 && raw[0] < 128:
			return t.short[raw[0]][128]
		case len(raw) == 2 && raw[0] < 128 && raw[1] < 128:
			return t.short[raw[0]][raw[1]]
		}
	}
	return t.lookup(raw)
}

func (t classTable) lookup(raw string) class {
	if c, ok := t.exact[raw]; ok {
		return c
	}
	if raw != "" {
		if c, ok := firstLetter[raw[0]]; ok {
			return c
		}
	}
	return cOther
}

// entries lists the table as raw tag -> class name, for the metadata.
func (t classTable) entries() map[string]string {
	m := make(map[string]string, len(t.exact))
	for k, v := range t.exact {
		m[k] = Classes[v].Name
	}
	return m
}

func classByName(name string) (class, bool) {
	for i, c := range Classes {
		if c.Name == name {
			return class(i), true
		}
	}
	return 0, false
}

func classNames() string {
	names := make([]string, len(Classes))
	for i, c := range Classes {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// ClassOf returns the class of a raw tag under the default table (nil overrides).
func ClassOf(raw string) Class {
	return Classes[classTable{exact: defaultTable}.of(raw)]
}
