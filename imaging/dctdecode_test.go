//go:build cgo

package imaging

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"github.com/kediff/kediff/synth"
)

// photoLike is smoothPhoto with hard edges and strong noise added, so that
// every DCT frequency carries energy.
func photoLike(w, h int, seed uint64) []byte {
	pix := smoothPhoto(w, h, seed)
	r := rand.New(rand.NewPCG(seed, 11))
	for y := range h {
		for x := range w {
			for c := range 3 {
				v := float64(pix[(y*w+x)*3+c]) + r.NormFloat64()*12
				if (x/13+y/9)%5 == 0 && c < 2 {
					v = float64(250 - 230*c)
				}
				pix[(y*w+x)*3+c] = byte(min(max(math.Round(v), 0), 255))
			}
		}
	}
	return pix
}

type dctCase struct {
	name string
	data []byte
}

// dctCases encodes photo-like images with libjpeg-turbo at every
// subsampling the decoder handles, at sizes that leave partial MCUs, and
// (with jpegtran, from libjpeg-turbo-progs) adds restart-interval copies.
func dctCases(t *testing.T, tj *tjCodec) []dctCase {
	var cases []dctCase
	samps := []struct {
		name string
		ss   int
	}{{"444", tjsamp444}, {"422", tjsamp422}, {"420", tjsamp420}, {"440", tjsamp440}, {"411", tjsamp411}, {"gray", tjsampGray}}
	sizes := [][2]int{{640, 480}, {37, 23}, {8, 8}, {1, 1}, {129, 250}}
	for i, sz := range sizes {
		for _, s := range samps {
			qs := []int{50, 95}
			if i == 0 {
				// At 100 most blocks code their 64th coefficient, so the
				// multi-symbol lookups often run into the next block.
				qs = append(qs, 100)
			}
			for _, q := range qs {
				w, h := sz[0], sz[1]
				data := encodeRGB(t, tj, photoLike(w, h, uint64(i)), w, h, q, s.ss)
				cases = append(cases, dctCase{fmt.Sprintf("%dx%d_%s_q%d", w, h, s.name, q), data})
			}
		}
	}
	cases = append(cases, dctCase{"testdata_photo", readFile(t, "photo.jpg")}, dctCase{"testdata_gray", readFile(t, "gray.jpg")})
	if _, err := exec.LookPath("jpegtran"); err != nil {
		t.Logf("jpegtran not installed (apt-get install libjpeg-turbo-progs): restart intervals untested")
		return cases
	}
	var extra []dctCase
	for _, c := range cases {
		if c.name != "640x480_420_q95" && c.name != "37x23_444_q50" && c.name != "129x250_gray_q95" {
			continue
		}
		// Restart intervals, and Huffman tables fitted to the file
		// (-optimize), which differ from file to file.
		for _, args := range [][]string{{"-restart", "1"}, {"-restart", "3B"}, {"-optimize"}, {"-optimize", "-restart", "2"}} {
			cmd := exec.Command("jpegtran", args...)
			cmd.Stdin = bytes.NewReader(c.data)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			extra = append(extra, dctCase{c.name + "_" + strings.Join(args, ""), out})
		}
	}
	return append(cases, extra...)
}

// TestDCTDecodeMatchesTurbo compares dctdecode.c's planes at every scale
// n/8 with libjpeg-turbo's own scaled decode to Y'CbCr planes of the same
// files (tjDecompressToYUVPlanes): the reference is the library itself.
func TestDCTDecodeMatchesTurbo(t *testing.T) {
	if !haveTurboYUV() {
		t.Skip("libjpeg-turbo with the planar API is not installed (go tool task setup)")
	}
	tj, err := newTJCodec(true)
	if err != nil {
		t.Fatal(err)
	}
	defer tj.close()
	st := newDCTState()
	defer setHuffMode(huffAuto)
	// In huffAuto mode a file's multi-symbol tables are built once its DHT
	// repeats: files in a row with the standard tables, then fitted ones,
	// check that tables left from another file are never used.
	cases := dctCases(t, tj)
	for _, mode := range []struct {
		avx2 bool
		huff int
	}{{true, huffMulti}, {true, huffSingle}, {false, huffMulti}, {true, huffAuto}} {
		avx2 := mode.avx2
		if avx2 && !setDCTAVX2(true) {
			continue
		}
		setDCTAVX2(avx2)
		setHuffMode(mode.huff)
		for _, tc := range cases {
			info, ok := st.header(tc.data)
			if !ok {
				t.Fatalf("%s: header not handled", tc.name)
			}
			w, h, ss, _, err := tj.headerSub(tc.data)
			if err != nil || w != info.w || h != info.h {
				t.Fatalf("%s: libjpeg-turbo header %dx%d (err %v), ours %dx%d", tc.name, w, h, err, info.w, info.h)
			}
			for _, f := range turboFactors() {
				if f.num > f.denom || 8%f.denom != 0 {
					continue
				}
				n := f.num * 8 / f.denom
				sw, sh := (w*n+7)/8, (h*n+7)/8
				// libjpeg-turbo's planes.
				var ref [3][]byte
				var rw, rh [3]int
				comps := info.ncomp
				for c := range comps {
					rw[c], rh[c] = planeSize(c, sw, sh, ss)
					ref[c] = make([]byte, rw[c]*rh[c])
				}
				if comps == 1 {
					ref[1], ref[2] = nil, nil
				}
				if _, err := tj.decodeYUV(tc.data, ref[0], ref[1], ref[2], rw[0], rw[min(1, comps-1)], sw, sh); err != nil {
					t.Fatalf("%s n=%d: libjpeg-turbo: %v", tc.name, n, err)
				}
				var planes [3][]byte
				var win [3]dctWindow
				for c := range comps {
					stride, rows := info.planeDims(c, n)
					planes[c] = make([]byte, stride*rows)
					win[c] = dctWindow{0, rw[c], 0, rh[c]}
				}
				if !st.decode(tc.data, &info, n, planes, win) {
					t.Fatalf("%s n=%d: dctDecode declined", tc.name, n)
				}
				for c := range comps {
					stride, _ := info.planeDims(c, n)
					// Compare the image's samples: past them, in the blocks
					// that only pad the last MCU, libjpeg writes nothing.
					vw, vh := sw, sh
					if c > 0 {
						hf, vf := info.hs[0]/info.hs[c], info.vs[0]/info.vs[c]
						vw, vh = (sw+hf-1)/hf, (sh+vf-1)/vf
					}
					maxd, sum := 0, 0
					for y := range vh {
						for x := range vw {
							d := int(planes[c][y*stride+x]) - int(ref[c][y*rw[c]+x])
							sum += abs(d)
							maxd = max(maxd, abs(d))
						}
					}
					mean := float64(sum) / float64(vw*vh)
					// libjpeg's integer transforms round differently from
					// this float one: off by one at most, at every scale.
					const limit = 1
					if maxd > limit || (vw*vh >= 64 && mean > 0.3) {
						t.Errorf("avx2=%v huffman mode %d %s n=%d comp %d: max diff %d, mean %.3f from libjpeg-turbo", avx2, mode.huff, tc.name, n, c, maxd, mean)
					}
				}
			}
		}
	}
	setDCTAVX2(true)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// BenchmarkDCTDecode compares libjpeg-turbo's full-size decode to planes
// with dctdecode.c at full size and at the scale and crop the bench
// config (640x480 -> center crop 256) uses.
func BenchmarkDCTDecode(b *testing.B) {
	tj, err := newTJCodec(true)
	if err != nil {
		b.Skip(err)
	}
	defer tj.close()
	// The bench's input: synth's photo-like 640x480 scenes at quality 90.
	var imgs [][]byte
	for i := range 16 {
		m, _ := synth.Render(rand.New(rand.NewPCG(uint64(i), 1)), synth.Options{Width: 640, Height: 480, Photo: true})
		imgs = append(imgs, encodeRGB(b, tj, toRGB(m, nil), 640, 480, 90, tjsamp420))
	}
	y, u, v := make([]byte, 640*480), make([]byte, 320*240), make([]byte, 320*240)
	b.Run("turbo_full", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			tj.decodeYUV(imgs[i%len(imgs)], y, u, v, 640, 320, 640, 480)
		}
	})
	st := newDCTState()
	info, _ := st.header(imgs[0])
	for _, tc := range []struct {
		name string
		n    int
		crop bool
	}{{"ours_full", 8, false}, {"ours_5of8", 5, false}, {"ours_5of8_crop", 5, true}, {"ours_entropy_only", 5, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var planes [3][]byte
			var win [3]dctWindow
			for c := range 3 {
				stride, rows := info.planeDims(c, tc.n)
				planes[c] = make([]byte, stride*rows)
				win[c] = dctWindow{0, stride - 8, 0, rows}
				if tc.crop {
					win[c].x0, win[c].x1 = (stride-8)/8, (stride-8)*7/8
				}
				if tc.name == "ours_entropy_only" {
					win[c] = dctWindow{}
				}
			}
			for i := 0; b.Loop(); i++ {
				img := imgs[i%len(imgs)]
				info, _ := st.header(img) // as processYUV does; decode reuses its parse
				if !st.decode(img, &info, tc.n, planes, win) {
					b.Fatal("declined")
				}
			}
		})
	}
}

// FuzzDCTDecode feeds damaged JPEGs to dctdecode.c and checks it against
// libjpeg-turbo: it must stay in bounds, and what it decodes must be a file
// libjpeg-turbo decodes too, with the same samples (within one level)
// where libjpeg-turbo reports no damage, except in blocks that saturate.
func FuzzDCTDecode(f *testing.F) {
	if !haveTurboYUV() {
		f.Skip("libjpeg-turbo with the planar API is not installed (go tool task setup)")
	}
	tj, err := newTJCodec(true)
	if err != nil {
		f.Fatal(err)
	}
	for i, ss := range []int{tjsamp420, tjsamp444, tjsampGray, tjsamp411, tjsamp422, tjsamp440} {
		w, h := 24+i*7, 17+i*5
		f.Add(encodeRGB(f, tj, photoLike(w, h, uint64(i)), w, h, 80, ss), uint8(i))
	}
	st := newDCTState()
	f.Fuzz(func(t *testing.T, data []byte, scale uint8) {
		info, ok := st.header(data)
		if !ok || info.w*info.h > 1<<20 {
			return
		}
		n := int(scale%8) + 1
		// Bit 4 of the scale byte picks one-symbol Huffman lookups, so the
		// fuzzer covers both decoding loops.
		if scale&16 != 0 {
			setHuffMode(huffSingle)
		} else {
			setHuffMode(huffMulti)
		}
		defer setHuffMode(huffAuto)
		var planes [3][]byte
		var win [3]dctWindow
		for c := range info.ncomp {
			stride, rows := info.planeDims(c, n)
			planes[c] = make([]byte, stride*rows)
			win[c] = dctWindow{0, stride - 8, 0, rows}
		}
		if !st.decode(data, &info, n, planes, win) {
			return
		}
		w, h, ss, _, err := tj.headerSub(data)
		if err != nil {
			return // the YUV path sends such files elsewhere before dctdecode.c
		}
		hf, vf, ok := chromaFactors(ss)
		if !ok || w != info.w || h != info.h || !info.matches(hf, vf) {
			return // a layout the YUV path would not send to dctdecode.c
		}
		sw, sh := (w*n+7)/8, (h*n+7)/8
		var ref [3][]byte
		var rw [3]int
		for c := range info.ncomp {
			var rh int
			rw[c], rh = planeSize(c, sw, sh, ss)
			ref[c] = make([]byte, rw[c]*rh)
		}
		warn, err := tj.decodeYUV(data, ref[0], ref[1], ref[2], rw[0], rw[min(1, info.ncomp-1)], sw, sh)
		if err != nil && !warn {
			t.Fatalf("dctdecode.c decoded a file libjpeg-turbo fails on: %v", err)
		}
		if warn {
			return // libjpeg-turbo saw damage dctdecode.c did not: its samples may differ
		}
		for c := range info.ncomp {
			stride, _ := info.planeDims(c, n)
			vw, vh := sw, sh
			if c > 0 {
				vw, vh = (sw+hf-1)/hf, (sh+vf-1)/vf
			}
			// saturated reports whether the n x n block holding (x, y) has a
			// sample at 0 or 255 in our output. Far out of range, libjpeg's
			// range limiting wraps where this decoder clamps, and its
			// fixed-point reduced transforms overflow 32 bits (a mutated
			// quantiser of 121 on a large DC: one sample 177 here, 47 there).
			saturated := func(x, y int) bool {
				x0, y0 := x/n*n, y/n*n
				for yy := y0; yy < y0+n; yy++ {
					for xx := x0; xx < x0+n; xx++ {
						if v := planes[c][yy*stride+xx]; v == 0 || v == 255 {
							return true
						}
					}
				}
				return false
			}
			for y := range vh {
				for x := range vw {
					a, b := planes[c][y*stride+x], ref[c][y*rw[c]+x]
					if a == 0 || a == 255 || b == 0 || b == 255 || saturated(x, y) {
						continue
					}
					if d := abs(int(a) - int(b)); d > 1 {
						t.Fatalf("n=%d comp %d (%d,%d): %d vs libjpeg-turbo %d", n, c, x, y, planes[c][y*stride+x], ref[c][y*rw[c]+x])
					}
				}
			}
		}
	})
}

// TestDCTPathCloseToTurboPath: the YUV path with dctdecode.c (DCT-domain
// scaling to n/8, cropped transforms) gives nearly the picture it gives
// with libjpeg-turbo decoding at full size or at 1/2, 1/4, 1/8, for every
// mode, and really takes dctdecode.c for these baseline files.
func TestDCTPathCloseToTurboPath(t *testing.T) {
	if !haveTurboYUV() || !dctDecoderOn {
		t.Skip("libjpeg-turbo with the planar API is not installed, or KEDIFF_DCT_DECODER=off")
	}
	decode := turboDecoder(t)
	worst := 0.0
	defer func() { t.Logf("worst mean abs diff %.3f", worst) }()
	for _, sz := range [][2]int{{640, 480}, {1280, 960}, {333, 1001}} {
		for _, ss := range []int{tjsamp420, tjsamp444, tjsampGray} {
			data := makeJPEG(t, sz[0], sz[1], ss, 3)
			for _, opt := range []Options{{}, {Size: 100}, {Mode: KeepRatio, Size: 200}, {Mode: Border, Size: 256}, {Mode: NoResize}} {
				p, q := newP(t, opt), newP(t, opt)
				q.dct = nil
				a, err := p.Process(data)
				if err != nil {
					t.Fatal(err)
				}
				ea := bytes.Clone(a.Encoded)
				b, err := q.Process(data)
				if err != nil {
					t.Fatal(err)
				}
				if a.Path != "yuv" {
					continue // border with an odd offset: the RGB path, by design
				}
				if p.dctDecodes != 1 {
					t.Fatalf("%v %d %+v: dctdecode.c not used", sz, ss, opt)
				}
				ia, ib := decode(ea), decode(b.Encoded)
				if ia.w != ib.w || ia.h != ib.h {
					t.Fatalf("%v %d %+v: %dx%d vs %dx%d", sz, ss, opt, ia.w, ia.h, ib.w, ib.h)
				}
				mean, maxd := diff(t, ia, ib)
				worst = max(worst, mean)
				if testing.Verbose() {
					t.Logf("%v %d %s %d: mean %.3f max %d", sz, ss, opt.Mode, opt.Size, mean, maxd)
				}
				if mean > 1.0 {
					t.Errorf("%v %d %+v: mean abs diff %.3f from the libjpeg-turbo decode", sz, ss, opt, mean)
				}
			}
		}
	}
}
