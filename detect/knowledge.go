package detect

import (
	"bytes"
	"cmp"
	"fmt"
	"github.com/kediff/kediff/internal/selection"
	"image"
	"image/jpeg"
	"slices"
	"strings"
	"unicode"
)

// Selection configures the eye-catching heuristics (design 1.4). An object
// is kept when its score is at least MinScore and its box covers at least
// MinArea of the image; of those, at most MaxObjects are kept, ranked by
// score * sqrt(area fraction) (confident and large first; ties: earlier
// detection first). Fraction and Seed choose the samples the detector runs
// on (Selected).
type Selection struct {
	MinScore   float32 // default 0.5
	MinArea    float32 // fraction of the image area; default 0.02
	MaxObjects int     // default 3
	Fraction   float64 // default 0.5 (the paper's 50%)
	Seed       uint64
}

// DefaultSelection returns MinScore 0.5, MinArea 0.02, MaxObjects 3,
// Fraction 0.5, Seed 0.
func DefaultSelection() Selection {
	return Selection{MinScore: 0.5, MinArea: 0.02, MaxObjects: 3, Fraction: 0.5}
}

// Keep sets Kept on the eye-catching objects of objs, whose boxes are
// normalised to the image (so the area is the area fraction).
func (s Selection) Keep(objs []Object) {
	type cand struct {
		i    int
		rank float64
	}
	var cs []cand
	for i := range objs {
		objs[i].Kept = false
		a := objs[i].Area()
		if objs[i].Score >= s.MinScore && a >= s.MinArea {
			cs = append(cs, cand{i, float64(objs[i].Score) * sqrt(float64(a))})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Compare(b.rank, a.rank) })
	for k, c := range cs {
		if k >= s.MaxObjects {
			break
		}
		objs[c.i].Kept = true
	}
}

func sqrt(x float64) float64 {
	if x <= 0 {
		return 0
	}
	z := x
	for i := 0; i < 30; i++ {
		z = (z + x/z) / 2
	}
	return z
}

// Mask is a region mask on the latent grid: Data[i*W+j] is 1 for the cells
// covered by a kept object, else 0; H and W are the stored image's height and
// width divided by 8 (rounded down).
type Mask struct {
	H, W int
	Data []uint8
}

// Shape is [H, W].
func (m Mask) Shape() []int { return []int{m.H, m.W} }

// LossMask marks the cells of the latent grid of a width x height image whose
// centres lie in a kept object's box: cell (i, j) has its centre at pixel
// ((j+0.5)*8, (i+0.5)*8) and is covered by a box (normalised, scaled by the
// image size) when x0 <= cx < x1 and y0 <= cy < y1.
func LossMask(objs []Object, width, height int) Mask {
	m := Mask{H: height / 8, W: width / 8}
	m.Data = make([]uint8, m.H*m.W)
	for _, o := range objs {
		if !o.Kept {
			continue
		}
		x0, x1 := float64(o.X0)*float64(width), float64(o.X1)*float64(width)
		y0, y1 := float64(o.Y0)*float64(height), float64(o.Y1)*float64(height)
		for i := 0; i < m.H; i++ {
			cy := (float64(i) + 0.5) * 8
			if cy < y0 || cy >= y1 {
				continue
			}
			for j := 0; j < m.W; j++ {
				cx := (float64(j) + 0.5) * 8
				if cx >= x0 && cx < x1 {
					m.Data[i*m.W+j] = 1
				}
			}
		}
	}
	return m
}

// IsChinese reports whether a caption is Chinese: it holds a Han character.
func IsChinese(caption string) bool {
	for _, r := range caption {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// Augment appends to caption the kept objects' labels that it does not
// mention, in the caption's language (IsChinese), in the order of objs,
// each label once:
//
//	Chinese: label_zh (the English label when it has none) is mentioned when
//	it is a substring of the caption; the suffix is "，有X", "，有X和Y",
//	"，有X、Y和Z", placed before a final 。！？ or . if there is one.
//	English: a label is mentioned when it occurs as a word or phrase, in
//	any case, optionally plural (+s/+es); the suffix is ", with a X",
//	", with a X and a Y", ", with a X, a Y and a Z" ("an" before a vowel),
//	placed before a final . ! or ?.
//
// An empty caption becomes the bare list ("a X and a Y"). Returns the
// caption unchanged when nothing is missing.
func Augment(caption string, objs []Object) string {
	zh := IsChinese(caption)
	var missing []string
	seen := map[string]bool{}
	lower := strings.ToLower(caption)
	for _, o := range objs {
		if !o.Kept {
			continue
		}
		name := o.Label
		if zh && o.LabelZh != "" {
			name = o.LabelZh
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		if zh {
			if strings.Contains(caption, name) {
				continue
			}
		} else if mentions(lower, strings.ToLower(name)) {
			continue
		}
		missing = append(missing, name)
	}
	if len(missing) == 0 {
		return caption
	}
	body, end := caption, ""
	if zh {
		for _, p := range []string{"。", "！", "？", "."} {
			if strings.HasSuffix(body, p) {
				body, end = strings.TrimSuffix(body, p), p
				break
			}
		}
		list := joinList(missing, "、", "和")
		if strings.TrimSpace(body) == "" {
			return "有" + list + end
		}
		return body + "，有" + list + end
	}
	for _, p := range []string{".", "!", "?"} {
		if strings.HasSuffix(body, p) {
			body, end = strings.TrimSuffix(body, p), p
			break
		}
	}
	for i, m := range missing {
		missing[i] = article(m) + " " + m
	}
	list := joinList(missing, ", ", " and ")
	if strings.TrimSpace(body) == "" {
		return list + end
	}
	return body + ", with " + list + end
}

func joinList(items []string, sep, last string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], sep) + last + items[len(items)-1]
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// mentions reports whether phrase occurs in text as whole words, plural
// forms (+s, +es) included. Both are lower case.
func mentions(text, phrase string) bool {
	if phrase == "" {
		return true
	}
	for start := 0; ; {
		i := strings.Index(text[start:], phrase)
		if i < 0 {
			return false
		}
		i += start
		j := i + len(phrase)
		rest := text[j:]
		if strings.HasPrefix(rest, "es") && !wordChar(rest, 2) {
			j += 2
		} else if strings.HasPrefix(rest, "s") && !wordChar(rest, 1) {
			j++
		}
		if (i == 0 || !isWord(rune(text[i-1]))) && !wordChar(text, j) {
			return true
		}
		start = i + 1
	}
}

func wordChar(s string, i int) bool { return i < len(s) && isWord(rune(s[i])) }

func isWord(r rune) bool { return r == '_' || r >= 0x80 || unicode.IsLetter(r) || unicode.IsDigit(r) }

// Sample is what Annotate needs of one pipeline sample: its key, its stored
// image (decoded, or JPEG bytes in JPEG) and its caption.
type Sample struct {
	Key     string
	Image   image.Image // the stored image; when nil, JPEG is decoded
	JPEG    []byte
	Caption string
}

// Annotation holds a sample's visual-knowledge columns.
type Annotation struct {
	// Objects are all detections (nil when not selected), boxes normalised
	// to the stored image, Kept set by the selection.
	Objects []Object
	// VisualKnowledge is true when the sample is in the selected fraction and
	// the detector ran on it.
	VisualKnowledge bool
	// Mask is the latent-grid mask of the kept objects (all zero when none
	// or not selected), always of shape [height/8, width/8].
	Mask Mask
	// Prompt is the caption with the unmentioned kept labels appended
	// (Augment); the caption itself when nothing is kept.
	Prompt string
	// Err, when set, says why the sample is a reject (undecodable image,
	// NaN outputs); the other fields are then empty.
	Err error
}

// Annotate computes the visual-knowledge columns of a batch of samples:
// samples that sel selects go through the detector in one batched call,
// the others only get an empty mask and their caption as prompt. The error
// return is for failures of the whole batch (a failed Run).
func (d *Detector) Annotate(samples []Sample, sel Selection) ([]Annotation, error) {
	anns := make([]Annotation, len(samples))
	var imgs []image.Image
	var which []int
	sizes := make([][2]int, len(samples))
	for i, s := range samples {
		img := s.Image
		if img == nil {
			var err error
			img, err = jpeg.Decode(bytes.NewReader(s.JPEG))
			if err != nil {
				anns[i].Err = fmt.Errorf("detect: sample %s: decoding the stored image: %w", s.Key, err)
				continue
			}
		}
		b := img.Bounds()
		sizes[i] = [2]int{b.Dx(), b.Dy()}
		anns[i].Prompt = s.Caption
		if selection.Selected(s.Key, sel.Seed, sel.Fraction) {
			imgs = append(imgs, img)
			which = append(which, i)
		} else {
			anns[i].Mask = LossMask(nil, b.Dx(), b.Dy())
		}
	}
	res, err := d.DetectResults(imgs)
	if err != nil {
		return nil, err
	}
	for k, i := range which {
		if res[k].Err != nil {
			anns[i] = Annotation{Err: fmt.Errorf("sample %s: %w", samples[i].Key, res[k].Err)}
			continue
		}
		w, h := float32(sizes[i][0]), float32(sizes[i][1])
		objs := res[k].Objects
		for j := range objs {
			objs[j].X0 /= w
			objs[j].X1 /= w
			objs[j].Y0 /= h
			objs[j].Y1 /= h
		}
		sel.Keep(objs)
		anns[i].Objects = objs
		anns[i].VisualKnowledge = true
		anns[i].Mask = LossMask(objs, sizes[i][0], sizes[i][1])
		anns[i].Prompt = Augment(samples[i].Caption, objs)
	}
	return anns, nil
}
