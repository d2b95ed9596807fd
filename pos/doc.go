// Package pos is the textual-knowledge stage of ERNIE-ViLG 2.0 (DESIGN.md 1.3): it
// splits a prompt into words, tags each word with a part of speech, maps the tag to
// one of a fixed set of POS classes, flags the keywords (notional words) and, for a
// hash-selected fraction of samples, writes the prompt with a special token before
// every word.
//
// Use it like this:
//
//	t, err := pos.NewTagger(pos.Config{Fraction: 0.5, Seed: 1})
//	...
//	r := t.Analyze(key, prompt) // safe for concurrent use
//	// r.Words, r.POS, r.POSRaw, r.Keyword, r.TextKnowledge, r.SpecialText
//
// # Tagging
//
// Chinese text (simplified and traditional) is segmented and tagged by
// github.com/go-ego/gse with its embedded dictionary (ICTCLAS/jieba tag set); the
// dictionary is loaded once per process and shared by all taggers with the same user
// dictionaries. Around gse the stage applies its own rules: whitespace, punctuation,
// HTML entities (&amp; ...), symbols/emoji and control characters are split off
// before gse sees the text; runs of digits (with inner '.', ',' or ':') are one
// numeral word (tag m); Latin words, whether in an English-only prompt or inside a
// Chinese one, are tagged with the averaged-perceptron tagger of
// github.com/jdkato/prose/v2 (Penn Treebank tags): a run of English words (with
// whitespace and ASCII punctuation between them; an English-only prompt is one run)
// is tagged together, in context; a lone Latin word inside Chinese text is tagged
// alone, through a process-wide cache of up to 65536 words.
//
// Words keep the prompt's bytes exactly: whitespace belongs to the word before it (or
// to the first word when the prompt starts with whitespace), so concatenating Words
// gives back the prompt, and removing the special tokens from SpecialText does too.
// Invalid UTF-8 bytes end up in words of class other; nothing panics.
//
// # Classes
//
// Every raw tag maps to one class; the class name is what the pos column holds and
// the token is what SpecialText inserts. Keywords are the words of the classes marked
// keyword (the notional words).
//
//	class        token keyword ICTCLAS/jieba tags            Penn tags (English)
//	noun         [n]   yes     n* (nr ns nt nz ...), j, s, l NN NNS NNP NNPS
//	verb         [v]   yes     v* (vn vd vg ...)             VB VBD VBG VBN VBP VBZ MD
//	adjective    [a]   yes     a* (ad an ag), b, z, i        JJ JJR JJS
//	numeral      [m]   yes     m*, digits                    CD
//	quantifier   [q]   yes     q*                            -
//	pronoun      [r]   yes     r*                            PRP PRP$ WP WP$ EX, DT this/that/these/those
//	adverb       [d]   no      d*                            RB RBR RBS WRB
//	preposition  [p]   no      p*                            IN TO
//	conjunction  [c]   no      c*                            CC
//	particle     [u]   no      u*, y*                        RP POS
//	locality     [f]   no      f*                            -
//	time         [t]   no      t*                            -
//	punctuation  [w]   no      w (punctuation, entities)     . , : ( ) `` '' # $ SYM
//	other        [x]   no      everything else: x, e, o, g, h, k, eng, symbols, emoji, controls
//
// A tag not in the table is classed by its first letter (ICTCLAS tags are lower
// case), else other. Config.Classes overrides entries (raw tag -> class name).
//
// # Selection
//
// A sample gets the textual knowledge (special text and keyword attention) when
// selection.Selected(key, Config.Seed, Config.Fraction) holds: h = FNV-1a 64 over
// the 8 little-endian bytes of seed followed by the bytes of key, mixed by the
// murmur3 finalizer fmix64; u = (h >> 11) / 2^53 in [0, 1); selected when
// u < fraction. The rule depends on nothing else, so re-runs agree; the
// detection and captioning stages use it too, with their own seeds.
package pos
