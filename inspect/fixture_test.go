package inspect

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"github.com/kediff/kediff/shards"
)

// The fixture's first sample: a 64x48 image of grey (bg) with a red block,
// one kept and one dropped detection, and a loss mask on its 6x8 latent
// grid. The report shows it 4x larger (256x192).
var (
	bg      = color.RGBA{200, 200, 200, 255}
	red     = color.RGBA{220, 30, 35, 255}
	keptBox = shards.Object{Label: "apple", LabelZh: "苹果", Score: 0.91, X0: 0.25, Y0: 0.25, X1: 0.75, Y1: 0.75, Kept: true}
	dropBox = shards.Object{Label: "cup", LabelZh: "杯子", Score: 0.30, X0: 0.0625, Y0: 0.5, X1: 0.1875, Y1: 0.875}
	// rowColors are the backgrounds of rows 1, 2, ... so that a test sees
	// which row's image a card shows.
	rowColors = []color.RGBA{{40, 90, 200, 255}, {250, 215, 25, 255}, {30, 170, 60, 255}}
)

const fixW, fixH = 64, 48

// The fixture's mask: the cells under the kept box (rows 2-3, columns 2-5)
// and one lone cell in the bottom-right corner (row 5, column 7), far from
// any box and label.
func fixtureMask() []byte {
	m := make([]byte, 6*8)
	for r := 2; r <= 3; r++ {
		for c := 2; c <= 5; c++ {
			m[r*8+c] = 1
		}
	}
	m[5*8+7] = 1
	return m
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fixtureImage is the first sample's image: bg with a red block in the kept
// box's middle (pixels 24-39 x 18-29).
func fixtureImage(t testing.TB) []byte {
	m := image.NewRGBA(image.Rect(0, 0, fixW, fixH))
	for y := 0; y < fixH; y++ {
		for x := 0; x < fixW; x++ {
			c := bg
			if x >= 24 && x < 40 && y >= 18 && y < 30 {
				c = red
			}
			m.SetRGBA(x, y, c)
		}
	}
	return encodePNG(t, m)
}

func plainImage(t testing.TB, c color.RGBA, w, h int) []byte {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(m.Pix); i += 4 {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.R, c.G, c.B, 255
	}
	return encodePNG(t, m)
}

// fixtureRows are the fixture's rows: k-0 (the one described above) and
// k-1.. in rowColors, one of them English and one Chinese.
func fixtureRows(t testing.TB) []shards.Row {
	gen := "a red apple on a grey table"
	rows := []shards.Row{{
		Key: "k-0", Caption: "一个红色的苹果", Prompt: gen, PromptSource: "generated",
		Image: &shards.Image{Bytes: fixtureImage(t), Path: "k-0.png"}, Width: fixW, Height: fixH,
		OriginalWidth: 640, OriginalHeight: 480, SHA256: "00", Source: "file:///in/00000.tar#k-0.jpg",
		Words: []string{"一个", "红色的", "苹果"}, POS: []string{"numeral", "adjective", "noun"},
		POSRaw: []string{"m", "a", "n"}, Keyword: []bool{false, true, true}, TextKnowledge: true,
		SpecialText: "[m]一个[a]红色的[n]苹果",
		Objects:     []shards.Object{keptBox, dropBox}, VisualKnowledge: true,
		LossMask: fixtureMask(), LossMaskShape: []int32{6, 8},
		GeneratedCaption: gen,
	}}
	for i, c := range rowColors {
		key := fmt.Sprintf("k-%d", i+1)
		rows = append(rows, shards.Row{
			Key: key, Caption: "a plain picture", Prompt: "a plain picture", PromptSource: "caption",
			Image: &shards.Image{Bytes: plainImage(t, c, 32, 32), Path: key + ".png"}, Width: 32, Height: 32,
			OriginalWidth: 32, OriginalHeight: 32, Source: "file:///in/00000.tar#" + key + ".jpg",
			Words: []string{"a ", "plain ", "picture"}, POS: []string{"other", "adjective", "noun"},
			POSRaw: []string{"DT", "JJ", "NN"}, Keyword: []bool{false, true, true},
		})
	}
	return rows
}

var fixtureRejects = []shards.Reject{
	{Key: "bad-1", Index: 4, Source: "file:///in/00000.tar#bad-1.jpg", Stage: "image", Reason: "image_decode", Detail: "JPEG: truncated"},
	{Key: "bad-2", Index: 5, Source: "file:///in/00000.tar#bad-2.txt", Stage: "text", Reason: "caption_empty", Detail: "caption is empty"},
	{Key: "bad-3", Index: 6, Source: "file:///in/00000.tar#bad-3.jpg", Stage: "image", Reason: "image_decode", Detail: "PNG: bad header"},
}

// writeShard writes one shard with its rejects and stats into the folder
// dirURL (created if missing).
func writeShard(t testing.TB, dirURL, id string, rows []shards.Row, rejects []shards.Reject, opt shards.WriterOptions) {
	t.Helper()
	ctx := context.Background()
	b, err := shards.OpenDir(ctx, dirURL, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w, err := shards.NewShardWriter(ctx, b, id, shards.Metadata{Version: "test", Config: []byte(`{}`)}, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if err := w.Write(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rejects {
		if err := w.WriteReject(&rejects[i]); err != nil {
			t.Fatal(err)
		}
	}
	st := shards.Stats{Read: int64(len(rows) + len(rejects)), Started: time.Unix(0, 0), Finished: time.Unix(1, 0)}
	if err := w.Close(st); err != nil {
		t.Fatal(err)
	}
}
