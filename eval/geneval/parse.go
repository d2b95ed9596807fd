package geneval

import (
	"fmt"
	"strings"

	"github.com/kediff/kediff/synth"
)

// Want is one object a prompt asks for: a synth shape and colour (English
// names, as in synth.Labels and synth.Colors) and its size class (synth.Small,
// synth.Medium or synth.Big; medium is the unmarked size).
type Want struct {
	Shape, Color, Size string
}

func (w Want) String() string {
	if w.Size == synth.Medium {
		return w.Color + " " + w.Shape
	}
	return w.Size + " " + w.Color + " " + w.Shape
}

// Relation is what a two-object prompt says about where the objects are.
type Relation string

const (
	// None: one or three objects, or two joined by "and" (no stated relation).
	None Relation = ""
	// LeftOf: Objects[0] is to the left of Objects[1].
	LeftOf Relation = "left_of"
	// Above: Objects[0] is above Objects[1].
	Above Relation = "above"
)

// Prompt is a parsed prompt: the objects in the order the relation names
// them, the relation, and the prompt's language ("en" or "zh").
type Prompt struct {
	Text     string
	Lang     string
	Objects  []Want
	Relation Relation
}

// UnparsedError says that a prompt is outside the synth grammar.
type UnparsedError struct {
	Prompt string
	Why    string
}

func (e *UnparsedError) Error() string {
	return fmt.Sprintf("geneval: prompt %q is outside the synth caption grammar: %s", e.Prompt, e.Why)
}

// Parse reads a prompt of the synth caption grammar (synth.Caption) in
// English or Chinese. Surrounding white space and a final full stop are
// ignored, English case too.
func Parse(text string) (Prompt, error) {
	s := strings.TrimSpace(text)
	s = strings.TrimRight(s, ".。 ")
	p := Prompt{Text: text}
	var err error
	if zhText(s) {
		p.Lang = "zh"
		p.Objects, p.Relation, err = parseZh(s)
	} else {
		p.Lang = "en"
		p.Objects, p.Relation, err = parseEn(strings.ToLower(s))
	}
	if err != nil {
		return Prompt{}, &UnparsedError{Prompt: text, Why: err.Error()}
	}
	return p, nil
}

func zhText(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

// English: "a X", "a X to the left of a Y", "a X above a Y", "a X and a Y",
// "a X, a Y and a Z", with X = [small|big] colour shape.
func parseEn(s string) ([]Want, Relation, error) {
	if a, b, ok := strings.Cut(s, " to the left of "); ok {
		return enPair(a, b, LeftOf)
	}
	if a, b, ok := strings.Cut(s, " above "); ok {
		return enPair(a, b, Above)
	}
	if first, rest, ok := strings.Cut(s, ", "); ok {
		b, c, ok := strings.Cut(rest, " and ")
		if !ok {
			return nil, None, fmt.Errorf("a list without \"and\"")
		}
		var out []Want
		for _, np := range []string{first, b, c} {
			w, err := enNP(np)
			if err != nil {
				return nil, None, err
			}
			out = append(out, w)
		}
		return out, None, nil
	}
	if a, b, ok := strings.Cut(s, " and "); ok {
		return enPair(a, b, None)
	}
	w, err := enNP(s)
	if err != nil {
		return nil, None, err
	}
	return []Want{w}, None, nil
}

func enPair(a, b string, rel Relation) ([]Want, Relation, error) {
	x, err := enNP(a)
	if err != nil {
		return nil, None, err
	}
	y, err := enNP(b)
	if err != nil {
		return nil, None, err
	}
	return []Want{x, y}, rel, nil
}

func enNP(s string) (Want, error) {
	f := strings.Fields(s)
	if len(f) < 3 || (f[0] != "a" && f[0] != "an") {
		return Want{}, fmt.Errorf("%q is not \"a [small|big] colour shape\"", s)
	}
	f = f[1:]
	w := Want{Size: synth.Medium}
	if f[0] == "small" || f[0] == "big" {
		w.Size = map[string]string{"small": synth.Small, "big": synth.Big}[f[0]]
		f = f[1:]
	}
	if len(f) != 2 {
		return Want{}, fmt.Errorf("%q is not \"a [small|big] colour shape\"", s)
	}
	for _, c := range synth.Colors {
		if c.Name == f[0] {
			w.Color = c.Name
		}
	}
	for _, l := range synth.Labels {
		if l.Name == f[1] {
			w.Shape = l.Name
		}
	}
	switch {
	case w.Color == "":
		return Want{}, fmt.Errorf("unknown colour %q", f[0])
	case w.Shape == "":
		return Want{}, fmt.Errorf("unknown shape %q", f[1])
	}
	return w, nil
}

// Chinese: "一个X", "Y左边有一个X", "Y上面有一个X", "一个X和一个Y",
// "一个X、一个Y和一个Z", with X = colour的[小|大]shape and the bare
// reference Y = colour[小|大]shape.
func parseZh(s string) ([]Want, Relation, error) {
	for _, r := range []struct {
		sep string
		rel Relation
	}{{"左边有", LeftOf}, {"上面有", Above}} {
		if ref, np, ok := strings.Cut(s, r.sep); ok {
			y, err := zhPhrase(ref, false)
			if err != nil {
				return nil, None, err
			}
			x, err := zhPhrase(np, true)
			if err != nil {
				return nil, None, err
			}
			return []Want{x, y}, r.rel, nil
		}
	}
	var parts []string
	if first, rest, ok := strings.Cut(s, "、"); ok {
		b, c, ok := strings.Cut(rest, "和")
		if !ok {
			return nil, None, fmt.Errorf("a list without 和")
		}
		parts = []string{first, b, c}
	} else if a, b, ok := strings.Cut(s, "和"); ok {
		parts = []string{a, b}
	} else {
		parts = []string{s}
	}
	var out []Want
	for _, np := range parts {
		w, err := zhPhrase(np, true)
		if err != nil {
			return nil, None, err
		}
		out = append(out, w)
	}
	return out, None, nil
}

// zhPhrase reads "一个colour的[size]shape" (np) or "colour[size]shape".
func zhPhrase(s string, np bool) (Want, error) {
	rest := s
	if np {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, "一个"); !ok {
			return Want{}, fmt.Errorf("%q does not start with 一个", s)
		}
	}
	w := Want{Size: synth.Medium}
	for _, c := range synth.Colors {
		if r, ok := strings.CutPrefix(rest, c.Zh); ok {
			w.Color, rest = c.Name, r
			break
		}
	}
	if w.Color == "" {
		return Want{}, fmt.Errorf("%q names no known colour", s)
	}
	if np {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, "的"); !ok {
			return Want{}, fmt.Errorf("%q lacks 的 after the colour", s)
		}
	}
	if r, ok := strings.CutPrefix(rest, "小"); ok {
		w.Size, rest = synth.Small, r
	} else if r, ok := strings.CutPrefix(rest, "大"); ok {
		w.Size, rest = synth.Big, r
	}
	for _, l := range synth.Labels {
		if rest == l.Zh {
			w.Shape = l.Name
		}
	}
	if w.Shape == "" {
		return Want{}, fmt.Errorf("%q: unknown shape %q", s, rest)
	}
	return w, nil
}
