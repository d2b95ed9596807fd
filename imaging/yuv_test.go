//go:build cgo

package imaging

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// smoothPhoto is a photo-like RGB image: smooth gradients, a few soft
// blobs and mild noise, so that chroma varies as in real photos.
func smoothPhoto(w, h int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	type blob struct{ x, y, s, c0, c1, c2 float64 }
	bs := make([]blob, 6)
	for i := range bs {
		bs[i] = blob{r.Float64() * float64(w), r.Float64() * float64(h), 0.05 + 0.3*r.Float64()*float64(max(w, h)),
			r.Float64()*255 - 128, r.Float64()*255 - 128, r.Float64()*255 - 128}
	}
	pix := make([]byte, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := [3]float64{128 + 60*float64(x)/float64(w), 100 + 50*float64(y)/float64(h), 140 - 40*float64(x+y)/float64(w+h)}
			for _, b := range bs {
				d := ((float64(x)-b.x)*(float64(x)-b.x) + (float64(y)-b.y)*(float64(y)-b.y)) / (b.s * b.s)
				g := math.Exp(-d)
				c[0] += b.c0 * g
				c[1] += b.c1 * g
				c[2] += b.c2 * g
			}
			for k := range c {
				v := c[k] + r.NormFloat64()*3
				pix[(y*w+x)*3+k] = byte(min(max(v, 0), 255))
			}
		}
	}
	return pix
}

// turboDecoder returns a function that decodes a JPEG to RGB with
// libjpeg-turbo (as djpeg does), closed when the test ends.
func turboDecoder(t *testing.T) func([]byte) rgbImage {
	d, err := NewBareTurboDecoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return func(b []byte) rgbImage {
		w, h, err := d.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return rgbImage{bytes.Clone(d.Pixels()[:w*h*3]), w, h}
	}
}

// makeJPEG encodes a smooth photo with libjpeg-turbo at quality 90 and the
// given subsampling (tjsampGray converts to grayscale).
func makeJPEG(t testing.TB, w, h, subsamp int, seed uint64) []byte {
	t.Helper()
	c, err := newTJCodec(true)
	if err != nil {
		t.Skip(err)
	}
	defer c.close()
	return encodeRGB(t, c, smoothPhoto(w, h, seed), w, h, 90, subsamp)
}

// encodeRGB compresses packed RGB with libjpeg-turbo at the given quality
// and subsampling.
func encodeRGB(t testing.TB, c *tjCodec, rgb []byte, w, h, quality, subsamp int) []byte {
	t.Helper()
	buf := make([]byte, w*h*4+1<<16)
	n, err := c.encodeSubsamp(rgb, w, h, quality, buf, 0, subsamp)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// TestYUVPathCloseToRGBPath checks that the YUV path gives (after decoding
// both outputs to RGB with libjpeg-turbo, as djpeg) the image the RGB path
// gives, within a mean absolute difference of 1.5 levels per sample: only
// chroma filtering differs (planar resampling instead of upsample, convert,
// resample in RGB, convert and box-downsample).
func TestYUVPathCloseToRGBPath(t *testing.T) {
	if !haveTurboYUV() {
		t.Skip(Backend())
	}
	decode := turboDecoder(t)
	samps := []struct {
		name string
		s    int
	}{{"420", tjsamp420}, {"422", tjsamp422}, {"444", tjsamp444}, {"440", tjsamp440}, {"411", tjsamp411}, {"gray", tjsampGray}}
	sizes := [][2]int{{640, 480}, {641, 479}, {257, 1000}, {1000, 257}, {97, 61}, {1280, 960}}
	if testing.Short() {
		sizes = sizes[1:3]
	}
	modes := []struct {
		mode Mode
		size int
		only bool
	}{
		{CenterCrop, 256, false}, {CenterCrop, 100, false}, {CenterCrop, 300, false}, {KeepRatio, 256, false},
		{KeepRatioLargest, 201, false}, {Border, 256, false}, {Border, 255, false}, {NoResize, 0, false},
		{CenterCrop, 512, true},
	}
	worst := 0.0
	for si, ss := range samps {
		for _, sz := range sizes {
			data := makeJPEG(t, sz[0], sz[1], ss.s, uint64(si*100+sz[0]))
			for _, m := range modes {
				name := fmt.Sprintf("%s/%dx%d/%s_%d", ss.name, sz[0], sz[1], m.mode, m.size)
				if m.only {
					name += "_only_if_bigger"
				}
				t.Run(name, func(t *testing.T) {
					opt := Options{Mode: m.mode, Size: m.size, Quality: 95, ResizeOnlyIfBigger: m.only}
					yp, rp := newP(t, opt), newP(t, opt)
					rp.yuvOK = false
					a, err := yp.Process(data)
					if err != nil {
						t.Fatal(err)
					}
					ai := decode(a.Encoded)
					b, err := rp.Process(data)
					if err != nil {
						t.Fatal(err)
					}
					if b.Path != "rgb" {
						t.Fatalf("forced RGB processor took path %q", b.Path)
					}
					if a.Width != b.Width || a.Height != b.Height || a.OriginalWidth != b.OriginalWidth || a.OriginalHeight != b.OriginalHeight {
						t.Fatalf("YUV path %dx%d (from %dx%d), RGB path %dx%d (from %dx%d)", a.Width, a.Height, a.OriginalWidth, a.OriginalHeight, b.Width, b.Height, b.OriginalWidth, b.OriginalHeight)
					}
					// Border needs the image at an even offset in the canvas.
					wantYUV := true
					if m.mode == Border {
						dw, dh := fitSize(sz[0], sz[1], m.size, false)
						wantYUV = ((m.size-dw)/2)%2 == 0 && ((m.size-dh)/2)%2 == 0
					}
					if (a.Path == "yuv") != wantYUV {
						t.Fatalf("path %q, want yuv=%v", a.Path, wantYUV)
					}
					mean, maxd := diff(t, ai, decode(b.Encoded))
					worst = max(worst, mean)
					if mean > 0.9 {
						t.Logf("mean %.3f max %d", mean, maxd)
					}
					if mean > 1.5 {
						t.Errorf("YUV vs RGB path: mean abs diff %.3f (max %d), want <= 1.5", mean, maxd)
					}
				})
			}
		}
	}
	t.Logf("worst mean abs diff %.3f", worst)
}

// TestYUVPathTaken checks which inputs take the YUV path.
func TestYUVPathTaken(t *testing.T) {
	if !haveTurboYUV() {
		t.Skip(Backend())
	}
	for _, tc := range []struct {
		in   string
		opt  Options
		want string
	}{
		{"photo.jpg", Options{}, "yuv"},
		{"progressive.jpg", Options{Size: 32}, "yuv"},
		{"gray.jpg", Options{Size: 16}, "yuv"},
		{"orient_1.jpg", Options{Size: 16}, "yuv"},
		{"orient_6.jpg", Options{Size: 16}, "rgb"}, // needs rotation
		{"cmyk.jpg", Options{Size: 16}, "rgb"},
		{"photo.jpg", Options{Format: "png"}, "rgb"},
		{"photo.jpg", Options{PureGo: true}, "rgb"},
		{"resize_src.png", Options{}, "rgb"},
	} {
		res, err := newP(t, tc.opt).Process(readFile(t, tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if res.Path != tc.want {
			t.Errorf("%s %+v: path %q, want %q", tc.in, tc.opt, res.Path, tc.want)
		}
	}
}

// TestYUVPathTruncated: a truncated JPEG is rejected on the YUV path too.
func TestYUVPathRejects(t *testing.T) {
	if !haveTurboYUV() {
		t.Skip(Backend())
	}
	p := newP(t, Options{})
	_, err := p.Process(readFile(t, "truncated.jpg"))
	if r, ok := err.(*Reject); !ok || r.Reason != ReasonDecode {
		t.Fatalf("got %v, want image_decode", err)
	}
}

// TestPlanePassesAVX2MatchSSE2: the AVX2 and SSE2 plane passes give
// identical bytes.
func TestPlanePassesAVX2MatchSSE2(t *testing.T) {
	if !setAVX2(true) {
		t.Skip("no AVX2 on this CPU")
	}
	defer setAVX2(true)
	data := makeJPEG(t, 641, 479, tjsamp420, 5)
	for _, opt := range []Options{{}, {Size: 100}, {Size: 700}, {Mode: KeepRatio, Size: 33}, {Mode: NoResize}} {
		p := newP(t, opt)
		setAVX2(true)
		a, err := p.Process(data)
		if err != nil {
			t.Fatal(err)
		}
		ea := bytes.Clone(a.Encoded)
		setAVX2(false)
		b, err := p.Process(data)
		if err != nil {
			t.Fatal(err)
		}
		if a.Path != "yuv" || !bytes.Equal(ea, b.Encoded) {
			t.Errorf("%+v: AVX2 and SSE2 plane passes differ (path %s)", opt, a.Path)
		}
	}
}

// TestResamplePlaneMatchesReference compares the C plane passes (AVX2 and
// SSE2, which also cover their scalar tails) with a direct Go evaluation of
// the separable 14-bit filter, vertical pass first, on random planes.
func TestResamplePlaneMatchesReference(t *testing.T) {
	defer setAVX2(true)
	r := rand.New(rand.NewPCG(1, 2))
	p := newP(t, Options{PureGo: true})
	for _, avx := range []bool{true, false} {
		setAVX2(avx)
		for _, g := range []struct {
			sw, sh, dw, dh   int
			sx, sy, spw, sph float64
		}{
			{480, 480, 256, 256, 0, 0, 480, 480},
			{641, 479, 256, 256, 81, 0, 479, 479},
			{37, 1000, 5, 300, 0, 0, 37, 1000},
			{100, 50, 333, 17, 0.5, 0, 99, 50},
			{3000, 9, 40, 9, 0, 0, 3000, 9},
			{64, 64, 64, 31, 0, 0, 64, 64},
			{64, 64, 31, 64, 0, 0, 64, 64},
		} {
			stride := g.sw + 3
			src := make([]byte, stride*g.sh)
			for i := range src {
				src[i] = byte(r.IntN(256))
			}
			var hk, vk kernel
			hk.build(g.sw, g.sx, g.spw, g.dw)
			vk.build(g.sh, g.sy, g.sph, g.dh)
			src = append(src, make([]byte, planeSlack(&hk))...)
			dst := make([]byte, g.dw*g.dh)
			p.resamplePlane(src, stride, &hk, &vk, dst, g.dw)
			taps := func(k *kernel, i int) (int, []int16) {
				if k.identity {
					return k.lo + i, []int16{1 << w16Bits}
				}
				return int(k.start[i]), k.w16[i*k.n8 : i*k.n8+int(k.cnt[i])]
			}
			round := func(s int32) byte { return byte(min(max((s+1<<13)>>14, 0), 255)) }
			bad := 0
			for y := 0; y < g.dh; y++ {
				vs, vw := taps(&vk, y)
				for x := 0; x < g.dw; x++ {
					hs, hw := taps(&hk, x)
					var h int32
					for a, wa := range hw {
						var v int32
						for b, wb := range vw {
							v += int32(src[(vs+b)*stride+hs+a]) * int32(wb)
						}
						h += int32(round(v)) * int32(wa)
					}
					if want := round(h); dst[y*g.dw+x] != want && bad < 3 {
						bad++
						t.Errorf("avx2=%v %+v: (%d,%d) = %d, want %d", avx, g, x, y, dst[y*g.dw+x], want)
					}
				}
			}
		}
	}
}
