package imaging

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 tools/imaging/make_fixtures.py)", err)
	}
	return b
}

// readPNM reads a binary PPM (P6) or PGM (P5) as packed RGB.
func readPNM(t testing.TB, data []byte) rgbImage {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(data))
	var magic string
	var w, h, maxv int
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil || maxv != 255 {
		t.Fatalf("bad PNM header: %v (max %d)", err, maxv)
	}
	r.ReadByte() // the single whitespace after maxval
	ch := 3
	if magic == "P5" {
		ch = 1
	}
	raw := make([]byte, w*h*ch)
	if n, _ := ioReadFull(r, raw); n != len(raw) {
		t.Fatalf("short PNM: %d of %d bytes", n, len(raw))
	}
	if ch == 3 {
		return rgbImage{raw, w, h}
	}
	rgb := make([]byte, 0, w*h*3)
	for _, v := range raw {
		rgb = append(rgb, v, v, v)
	}
	return rgbImage{rgb, w, h}
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// decodeRGB decodes PNG or JPEG bytes with Go's decoders (for expected
// outputs that PIL wrote as PNG, and for checking encoded results).
func decodeRGB(t testing.TB, data []byte) rgbImage {
	t.Helper()
	m, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return rgbImage{toRGB(m, nil), m.Bounds().Dx(), m.Bounds().Dy()}
}

// diff returns the mean and maximum absolute difference per sample.
func diff(t testing.TB, got, want rgbImage) (mean float64, maxd int) {
	t.Helper()
	if got.w != want.w || got.h != want.h {
		t.Fatalf("size %dx%d, want %dx%d", got.w, got.h, want.w, want.h)
	}
	sum := 0
	for i, v := range want.pix[:want.w*want.h*3] {
		d := int(got.pix[i]) - int(v)
		if d < 0 {
			d = -d
		}
		sum += d
		maxd = max(maxd, d)
	}
	return float64(sum) / float64(len(want.pix)), maxd
}

func newP(t testing.TB, opt Options) *Processor {
	t.Helper()
	p, err := NewProcessor(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// backends runs f once with libjpeg-turbo (when loadable) and once with
// the pure-Go codecs.
func backends(t *testing.T, f func(t *testing.T, pureGo bool)) {
	for _, pure := range []bool{false, true} {
		name := "turbo"
		if pure {
			name = "purego"
		} else if !loadTurbo() {
			t.Logf("skipping the libjpeg-turbo backend: %s", Backend())
			continue
		}
		t.Run(name, func(t *testing.T) { f(t, pure) })
	}
}

func TestBackend(t *testing.T) {
	t.Logf("Backend() = %s", Backend())
	if Backend() == "" {
		t.Fatal("empty Backend()")
	}
}

func TestTurboDecodeMatchesDjpeg(t *testing.T) {
	if !loadTurbo() {
		t.Skip(Backend())
	}
	d, err := NewBareTurboDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, tc := range []struct{ jpg, ppm string }{
		{"small.jpg", "small.ppm"},
		{"progressive.jpg", "progressive.ppm"},
		{"gray.jpg", "gray.ppm"},
	} {
		t.Run(tc.jpg, func(t *testing.T) {
			w, h, err := d.Decode(readFile(t, tc.jpg))
			if err != nil {
				t.Fatal(err)
			}
			want := readPNM(t, readFile(t, tc.ppm))
			if !bytes.Equal(d.Pixels()[:w*h*3], want.pix) {
				mean, maxd := diff(t, rgbImage{d.Pixels(), w, h}, want)
				t.Fatalf("differs from djpeg: mean %.3f max %d", mean, maxd)
			}
		})
	}
	t.Run("scale_1_2", func(t *testing.T) {
		// A Processor decoding 96x72 for a 36-pixel centre crop picks 1/2.
		p := newP(t, Options{Size: 36})
		sw, sh := p.scaledSize(96, 72)
		if sw != 48 || sh != 36 {
			t.Fatalf("scaled size %dx%d, want 48x36 (1/2)", sw, sh)
		}
		img, _, _, err := p.decode(readFile(t, "small.jpg"), fmtJPEG)
		if err != nil {
			t.Fatal(err)
		}
		if want := readPNM(t, readFile(t, "small_scale_1_2.ppm")); !bytes.Equal(img.pix, want.pix) {
			mean, maxd := diff(t, img, want)
			t.Fatalf("differs from djpeg -scale 1/2: mean %.3f max %d", mean, maxd)
		}
	})
	t.Run("photo_live_djpeg", func(t *testing.T) {
		if _, err := exec.LookPath("djpeg"); err != nil {
			t.Skip("djpeg not installed (apt-get install libjpeg-turbo-progs)")
		}
		out, err := exec.Command("djpeg", "-ppm", filepath.Join("testdata", "photo.jpg")).Output()
		if err != nil {
			t.Fatal(err)
		}
		w, h, err := d.Decode(readFile(t, "photo.jpg"))
		if err != nil || !bytes.Equal(d.Pixels()[:w*h*3], readPNM(t, out).pix) {
			t.Fatalf("photo.jpg differs from djpeg (err %v)", err)
		}
	})
}

func TestPureGoDecodeCloseToDjpeg(t *testing.T) {
	// Go's image/jpeg uses another IDCT and replicates chroma instead of
	// libjpeg's fancy upsampling: pixels stay close on average.
	p := newP(t, Options{Mode: NoResize, PureGo: true})
	for _, tc := range []struct{ jpg, ppm string }{
		{"small.jpg", "small.ppm"},
		{"progressive.jpg", "progressive.ppm"},
		{"gray.jpg", "gray.ppm"},
	} {
		t.Run(tc.jpg, func(t *testing.T) {
			img, _, _, err := p.decode(readFile(t, tc.jpg), fmtJPEG)
			if err != nil {
				t.Fatal(err)
			}
			mean, maxd := diff(t, img, readPNM(t, readFile(t, tc.ppm)))
			t.Logf("mean %.3f max %d", mean, maxd)
			if mean > 1.5 {
				t.Errorf("mean abs diff %.3f from djpeg, want <= 1.5", mean)
			}
		})
	}
}

func TestOrientation(t *testing.T) {
	backends(t, func(t *testing.T, pure bool) {
		p := newP(t, Options{Mode: NoResize, PureGo: pure})
		cases := []struct{ in, want string }{{"orient_6.png", "orient_6_png_expected.png"}}
		for o := 1; o <= 8; o++ {
			cases = append(cases, struct{ in, want string }{fmt.Sprintf("orient_%d.jpg", o), fmt.Sprintf("orient_%d_expected.png", o)})
		}
		for _, tc := range cases {
			t.Run(tc.in, func(t *testing.T) {
				data := readFile(t, tc.in)
				img, ow, oh, err := p.decode(data, sniff(data))
				if err != nil {
					t.Fatal(err)
				}
				want := decodeRGB(t, readFile(t, tc.want))
				if ow != want.w || oh != want.h {
					t.Fatalf("original size %dx%d, want %dx%d", ow, oh, want.w, want.h)
				}
				mean, maxd := diff(t, img, want)
				// PIL decodes with the same libjpeg-turbo: exact for turbo.
				if (!pure && maxd != 0) || mean > 1.5 {
					t.Errorf("differs from PIL exif_transpose: mean %.3f max %d", mean, maxd)
				}
			})
		}
	})
}

func TestFormatsDecode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		mean     float64 // bound on the mean absolute difference
	}{
		{"cmyk.jpg", "cmyk_expected.png", 1.5},
		{"alpha.png", "alpha_expected.png", 0.01},
		{"gray_alpha.png", "gray_alpha_expected.png", 0.01},
		{"palette.png", "palette_expected.png", 0},
		{"gray.png", "gray_png_expected.png", 0},
		{"png16_rgb.png", "png16_rgb_expected.png", 0},
		{"png16_rgba.png", "png16_rgba_expected.png", 0.01},
		{"anim.gif", "anim_expected.png", 0},
		{"lossy.webp", "lossy_webp_expected.png", 2},
		{"alpha.webp", "alpha_webp_expected.png", 2},
		{"lossless.webp", "lossless_webp_expected.png", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p := newP(t, Options{Mode: NoResize})
			data := readFile(t, tc.in)
			img, _, _, err := p.decode(data, sniff(data))
			if err != nil {
				t.Fatal(err)
			}
			mean, maxd := diff(t, img, decodeRGB(t, readFile(t, tc.want)))
			t.Logf("mean %.4f max %d", mean, maxd)
			if mean > tc.mean {
				t.Errorf("mean abs diff %.4f from PIL, want <= %g", mean, tc.mean)
			}
		})
	}
}

// TestResizeMatchesPIL compares each mode with PIL's BILINEAR resize (an
// antialiased triangle filter, like ours) on a lossless source.
func TestResizeMatchesPIL(t *testing.T) {
	src := readFile(t, "resize_src.png")
	for _, tc := range []struct {
		mode Mode
		size int
		want string
	}{
		{CenterCrop, 64, "resize_center_crop_64.png"},
		{KeepRatio, 64, "resize_keep_ratio_64.png"},
		{KeepRatioLargest, 64, "resize_keep_ratio_largest_64.png"},
		{Border, 64, "resize_border_64.png"},
		{CenterCrop, 160, "resize_center_crop_160.png"}, // upscaling
	} {
		t.Run(fmt.Sprintf("%s_%d", tc.mode, tc.size), func(t *testing.T) {
			p := newP(t, Options{Size: tc.size, Mode: tc.mode, Format: "png"})
			res, err := p.Process(src)
			if err != nil {
				t.Fatal(err)
			}
			if res.Ext != "png" || res.OriginalWidth != 200 || res.OriginalHeight != 150 {
				t.Errorf("result %s %dx%d, want png 200x150", res.Ext, res.OriginalWidth, res.OriginalHeight)
			}
			got := decodeRGB(t, res.Encoded)
			if got.w != res.Width || got.h != res.Height {
				t.Errorf("encoded %dx%d, Result says %dx%d", got.w, got.h, res.Width, res.Height)
			}
			mean, maxd := diff(t, got, decodeRGB(t, readFile(t, tc.want)))
			t.Logf("mean %.4f max %d", mean, maxd)
			// PIL resamples horizontally first, we vertically first: the
			// intermediate rounding differs by at most one level.
			if mean > 0.25 || maxd > 1 {
				t.Errorf("differs from PIL: mean %.4f (want <= 0.25) max %d (want <= 1)", mean, maxd)
			}
		})
	}
}

func TestDCTScaledCloseToFullDecode(t *testing.T) {
	if !loadTurbo() {
		t.Skip(Backend())
	}
	data := readFile(t, "photo.jpg")
	for _, size := range []int{240, 120, 60} { // 1/2, 1/4, 1/8
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			fast := newP(t, Options{Size: size, Format: "png"})
			full := newP(t, Options{Size: size, Format: "png"})
			full.noDCTScale = true
			a, err := fast.Process(data)
			if err != nil {
				t.Fatal(err)
			}
			ai := decodeRGB(t, a.Encoded)
			b, err := full.Process(data)
			if err != nil {
				t.Fatal(err)
			}
			mean, maxd := diff(t, ai, decodeRGB(t, b.Encoded))
			sw, sh := fast.scaledSize(640, 480)
			t.Logf("DCT-scaled decode %dx%d: mean %.3f max %d", sw, sh, mean, maxd)
			if sw == 640 || mean > 2 {
				t.Errorf("DCT scaling to %dx%d: mean abs diff %.3f from full decode, want <= 2", sw, sh, mean)
			}
		})
	}
}

// pngHeader crafts a PNG with only a signature and a valid IHDR.
func pngHeader(w, h uint32) []byte {
	ihdr := []byte("IHDR")
	ihdr = binary.BigEndian.AppendUint32(ihdr, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	b := []byte(pngSignature)
	b = binary.BigEndian.AppendUint32(b, 13)
	b = append(b, ihdr...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(ihdr))
}

// jpegWithSize patches the SOF dimensions of a baseline JPEG.
func jpegWithSize(t testing.TB, data []byte, w, h uint16) []byte {
	b := bytes.Clone(data)
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

func TestRejects(t *testing.T) {
	if !bytes.Equal(pngHeader(100000, 100000), readFile(t, "bomb.png")) {
		t.Error("pngHeader differs from PIL-made testdata/bomb.png")
	}
	photo := readFile(t, "photo.jpg") // 640x480
	backends(t, func(t *testing.T, pure bool) {
		for _, tc := range []struct {
			name   string
			data   []byte
			opt    Options
			reason string
		}{
			{"zero_bytes", nil, Options{}, ReasonEmpty},
			{"text", readFile(t, "text.txt"), Options{}, ReasonFormat},
			{"truncated_jpeg", readFile(t, "truncated.jpg"), Options{}, ReasonDecode},
			{"jpeg_header_only", photo[:200], Options{}, ReasonDecode},
			{"corrupt_png", readFile(t, "corrupt.png"), Options{}, ReasonDecode},
			{"png_bomb", readFile(t, "bomb.png"), Options{}, ReasonTooLarge},
			{"jpeg_bomb", jpegWithSize(t, photo, 65000, 65000), Options{}, ReasonTooLarge},
			{"decode_limit", photo, Options{MaxDecodePixels: 640*480 - 1}, ReasonTooLarge},
			{"min_image_size", photo, Options{MinImageSize: 481}, ReasonTooSmall},
			{"max_image_area", photo, Options{MaxImageArea: 640*480 - 1}, ReasonTooLarge},
			{"max_aspect_ratio", photo, Options{MaxAspectRatio: 1.3}, ReasonAspectRatio},
			{"gif_garbage", []byte("GIF89a\x10\x00\x10\x00garbage"), Options{}, ReasonDecode},
			{"webp_garbage", []byte("RIFF\x10\x00\x00\x00WEBPVP8 garbage"), Options{}, ReasonDecode},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.opt.PureGo = pure
				p := newP(t, tc.opt)
				_, err := p.Process(tc.data)
				var r *Reject
				if !errors.As(err, &r) {
					t.Fatalf("got %v, want a *Reject", err)
				}
				if r.Reason != tc.reason {
					t.Fatalf("reason %q (%v), want %q", r.Reason, err, tc.reason)
				}
				t.Logf("%v", err)
			})
		}
		t.Run("filters_pass_at_limit", func(t *testing.T) {
			p := newP(t, Options{PureGo: pure, MinImageSize: 480, MaxImageArea: 640 * 480, MaxAspectRatio: 640.0 / 480, MaxDecodePixels: 640 * 480})
			if _, err := p.Process(photo); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func TestBombAllocatesNoPixels(t *testing.T) {
	p := newP(t, Options{})
	bomb := pngHeader(100000, 100000)
	p.Process(bomb) // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := p.Process(bomb)
	runtime.ReadMemStats(&after)
	if r, ok := err.(*Reject); !ok || r.Reason != ReasonTooLarge {
		t.Fatalf("got %v, want image_too_large", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("rejecting a 100000x100000 PNG allocated %d bytes, want < 64 KiB", n)
	}
}

func TestProcessResult(t *testing.T) {
	data := readFile(t, "photo.jpg")
	sum := sha256.Sum256(data)
	backends(t, func(t *testing.T, pure bool) {
		p := newP(t, Options{PureGo: pure, Quality: 90})
		res, err := p.Process(data)
		if err != nil {
			t.Fatal(err)
		}
		if res.SHA256 != hex.EncodeToString(sum[:]) || res.Ext != "jpg" ||
			res.Width != 256 || res.Height != 256 || res.OriginalWidth != 640 || res.OriginalHeight != 480 {
			t.Fatalf("result %+v", Result{Ext: res.Ext, Width: res.Width, Height: res.Height, OriginalWidth: res.OriginalWidth, OriginalHeight: res.OriginalHeight, SHA256: res.SHA256})
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(res.Encoded))
		if err != nil || cfg.Width != 256 || cfg.Height != 256 {
			t.Fatalf("encoded output: %v %+v", err, cfg)
		}
		// Orientation swaps the original size.
		res, err = p.Process(readFile(t, "orient_6.jpg"))
		if err != nil || res.OriginalWidth != 32 || res.OriginalHeight != 48 {
			t.Fatalf("orient_6: %v %dx%d, want 32x48", err, res.OriginalWidth, res.OriginalHeight)
		}
		// Border colour and ResizeOnlyIfBigger.
		q := newP(t, Options{PureGo: pure, Size: 64, Mode: Border, Format: "png", BorderColor: colorRGBA(10, 200, 30)})
		res, err = q.Process(readFile(t, "resize_src.png"))
		if err != nil {
			t.Fatal(err)
		}
		if img := decodeRGB(t, res.Encoded); !bytes.Equal(img.pix[:3], []byte{10, 200, 30}) {
			t.Errorf("border pixel %v, want [10 200 30]", img.pix[:3])
		}
		r := newP(t, Options{PureGo: pure, Size: 512, ResizeOnlyIfBigger: true})
		res, err = r.Process(data)
		if err != nil || res.Width != 640 || res.Height != 480 {
			t.Fatalf("ResizeOnlyIfBigger: %v %dx%d, want 640x480", err, res.Width, res.Height)
		}
	})
}

func TestSteadyStateAllocs(t *testing.T) {
	if !loadTurbo() {
		t.Skip(Backend())
	}
	data := readFile(t, "photo.jpg")
	p := newP(t, Options{})
	if _, err := p.Process(data); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(20, func() {
		if _, err := p.Process(data); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 { // the SHA256 string
		t.Fatalf("%.1f allocations per Process, want <= 1", n)
	}
}

func TestNewProcessorErrors(t *testing.T) {
	for _, tc := range []struct {
		opt  Options
		want string
	}{
		{Options{Mode: "squash"}, "Mode"},
		{Options{Format: "gif"}, "Format"},
		{Options{Quality: 101}, "Quality"},
		{Options{Size: -1}, "Size"},
		{Options{MinImageSize: -1}, "negative"},
		{Options{MaxAspectRatio: 0.5}, "MaxAspectRatio"},
	} {
		if _, err := NewProcessor(tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewProcessor(%+v) = %v, want an error about %s", tc.opt, err, tc.want)
		}
	}
}

func TestTiffOrientation(t *testing.T) {
	le := func(o uint16) []byte {
		b := []byte("II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00")
		return append(binary.LittleEndian.AppendUint16(b, o), 0, 0, 0, 0, 0, 0)
	}
	be := func(o uint16) []byte {
		b := []byte("MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01")
		return append(binary.BigEndian.AppendUint16(b, o), 0, 0, 0, 0, 0, 0)
	}
	for o := uint16(0); o <= 9; o++ {
		want := int(o)
		if o < 1 || o > 8 {
			want = 1
		}
		if got := tiffOrientation(le(o)); got != want {
			t.Errorf("II orientation %d: got %d", o, got)
		}
		if got := tiffOrientation(be(o)); got != want {
			t.Errorf("MM orientation %d: got %d", o, got)
		}
	}
	for _, b := range [][]byte{nil, []byte("II*\x00\xff\xff\xff\xff"), []byte("XX*\x00\x08\x00\x00\x00")} {
		if got := tiffOrientation(b); got != 1 {
			t.Errorf("malformed %q: got %d, want 1", b, got)
		}
	}
}

func TestCPassesMatchGo(t *testing.T) {
	if !haveCPasses {
		t.Skip("built without cgo")
	}
	data := readFile(t, "photo.jpg")
	for _, mode := range []Mode{CenterCrop, KeepRatio, Border} {
		for _, size := range []int{100, 256, 700} {
			c := newP(t, Options{Size: size, Mode: mode, Format: "png", PureGo: true})
			g := newP(t, Options{Size: size, Mode: mode, Format: "png", PureGo: true})
			g.goPasses = true
			a, err := c.Process(data)
			if err != nil {
				t.Fatal(err)
			}
			ea := bytes.Clone(a.Encoded)
			b, err := g.Process(data)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ea, b.Encoded) {
				t.Errorf("%s %d: C and Go resampling differ", mode, size)
			}
		}
	}
}

func TestKernelWeightsSumToOne(t *testing.T) {
	var k kernel
	for _, g := range []struct {
		src  int
		off  float64
		span float64
		dst  int
	}{{300, 0, 300, 256}, {640, 80, 480, 256}, {150, 0, 150, 160}, {7, 0, 7, 1}, {1, 0, 1, 9}} {
		k.valid = false
		k.build(g.src, g.off, g.span, g.dst)
		for i := 0; i < g.dst && !k.identity; i++ {
			s := int32(0)
			for _, w := range k.w[i*k.n : i*k.n+int(k.cnt[i])] {
				s += w
			}
			if math.Abs(float64(s-1<<wBits)) > float64(k.cnt[i]) {
				t.Errorf("%+v output %d: weights sum to %d, want %d", g, i, s, 1<<wBits)
			}
			if k.start[i] < 0 || int(k.start[i]+k.cnt[i]) > g.src {
				t.Errorf("%+v output %d: taps [%d,+%d) outside the source", g, i, k.start[i], k.cnt[i])
			}
		}
	}
}

var _ = png.Decode

func colorRGBA(r, g, b uint8) color.RGBA { return color.RGBA{r, g, b, 255} }
