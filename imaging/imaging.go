// Package imaging is the image stage of the preprocessing pipeline: it turns
// the bytes of one downloaded image into a normalised, re-encoded training
// image plus the facts the shard records (size before and after, sha256).
//
// Process, per image:
//
//  1. sniff the format (JPEG, PNG, GIF first frame, WebP) and read the
//     declared dimensions from the header only; images declaring more than
//     Options.MaxDecodePixels pixels are rejected before any pixel memory is
//     allocated (decompression bombs);
//  2. read the EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) and apply
//     the size filters MinImageSize, MaxImageArea and MaxAspectRatio to the
//     original, upright size;
//  3. decode to 8-bit RGB. JPEGs go through libjpeg-turbo, loaded at run time
//     (see Backend), using DCT-domain scaling: the image is decoded directly
//     at the smallest M/8 scale that still covers what the resize needs.
//     CMYK/YCCK JPEGs, the other formats, and all JPEGs when the library is
//     absent use Go's decoders. Grayscale, palette, 16-bit and CMYK images are
//     converted; alpha is composited onto white;
//  4. rotate/flip upright, resize with an antialiased triangle filter
//     (bilinear when upscaling, the filter PIL calls BILINEAR) according to
//     Options.Mode, and
//  5. encode as JPEG (libjpeg-turbo or image/jpeg, 4:2:0 chroma) or PNG.
//
// JPEG-to-JPEG with libjpeg-turbo skips RGB altogether where it can (the
// YUV path, Result.Path "yuv"; see processYUV): YCbCr or grayscale JPEGs
// with EXIF orientation 1 are decoded to their planes, each plane is
// resized with the same geometry and filter, and the 4:2:0 planes are
// compressed directly. That roughly halves the per-image time. On this
// path single-scan baseline JPEGs (most photos) are decoded by our own
// dctdecode.c: it scales in the DCT domain by any n/8 (libjpeg-turbo 2.1
// only has fast 1/2, 1/4, 1/8) and transforms only the blocks the crop
// keeps; anything else, and any file it finds damaged, goes to
// libjpeg-turbo, which then owns the warnings and rejects.
// KEDIFF_DCT_DECODER=off turns it off.
//
// Every failure is a *Reject with a short machine-readable Reason, so that
// the pipeline can file the sample in its rejects table; Process never
// panics on bad input.
//
// A Processor owns reusable buffers and codec handles: create one per worker
// goroutine. In steady state (JPEG in, JPEG out, libjpeg-turbo present)
// Process allocates only the returned SHA256 string.
//
// Resize modes follow img2dataset's resize_mode:
//
//   - center_crop (default): scale so the shorter side is Size, then crop the
//     centred Size x Size square;
//   - keep_ratio: scale so the shorter side is Size (the longer side is then
//     larger than Size), as img2dataset's keep_ratio (SmallestMaxSize);
//   - keep_ratio_largest: scale so the longer side is Size;
//   - border: scale so the longer side is Size and pad to Size x Size with
//     BorderColor (black by default, as img2dataset), image centred;
//   - none: keep the original size.
package imaging

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"runtime"
)

// Mode selects how images are resized; see the package comment.
type Mode string

const (
	CenterCrop       Mode = "center_crop"
	KeepRatio        Mode = "keep_ratio"
	KeepRatioLargest Mode = "keep_ratio_largest"
	Border           Mode = "border"
	NoResize         Mode = "none"
)

// DefaultMaxDecodePixels is the decompression-bomb limit used when
// Options.MaxDecodePixels is 0: 100 megapixels.
const DefaultMaxDecodePixels = 100_000_000

// Options configures a Processor. The zero value means: 256 x 256 centre
// crop, JPEG quality 95, no size filters, 100 MP bomb limit.
type Options struct {
	Size int  // target size in pixels; 0 means 256
	Mode Mode // "" means center_crop

	// ResizeOnlyIfBigger keeps images that are already no larger than the
	// target (shorter side <= Size for center_crop/keep_ratio, longer side
	// <= Size for keep_ratio_largest/border) at their size, uncropped and
	// unpadded, as img2dataset's resize_only_if_bigger.
	ResizeOnlyIfBigger bool

	MinImageSize   int     // reject when min(w, h) of the original is below; 0 = off
	MaxImageArea   int     // reject when w*h of the original is above; 0 = off
	MaxAspectRatio float64 // reject when max(w,h)/min(w,h) of the original is above; 0 = off

	// MaxDecodePixels rejects images whose header declares more pixels,
	// before decoding. 0 means DefaultMaxDecodePixels; negative disables it.
	MaxDecodePixels int

	Format  string // "jpeg" (default; "jpg" accepted) or "png"
	Quality int    // JPEG quality 1..100; 0 means 95

	// BorderColor fills the padding in border mode; its alpha is ignored.
	// The zero value is black, as in img2dataset.
	BorderColor color.RGBA

	// PureGo forces Go's decoders and encoders even when libjpeg-turbo is
	// available (for comparisons and tests).
	PureGo bool
}

// Result is one processed image.
type Result struct {
	// Encoded is the re-encoded image. It aliases the Processor's buffer and
	// is valid only until the next Process call on the same Processor:
	// copy it to keep it.
	Encoded []byte
	Ext     string // "jpg" or "png"
	// Width and Height are those of Encoded; OriginalWidth and
	// OriginalHeight are the input's, after EXIF orientation, before resize.
	Width, Height, OriginalWidth, OriginalHeight int
	SHA256                                       string // hex sha256 of the input bytes, as img2dataset
	// Path says how the pixels went: "yuv" for a JPEG re-encoded from its
	// Y'CbCr planes without RGB conversion (see processYUV), "rgb" otherwise.
	Path string
}

// Reject reason codes.
const (
	ReasonEmpty       = "image_empty"        // zero bytes
	ReasonFormat      = "image_format"       // not an image, or an unsupported format
	ReasonDecode      = "image_decode"       // corrupt or truncated
	ReasonTooLarge    = "image_too_large"    // declared size over MaxDecodePixels or MaxImageArea
	ReasonTooSmall    = "image_too_small"    // min(w, h) under MinImageSize
	ReasonAspectRatio = "image_aspect_ratio" // max(w,h)/min(w,h) over MaxAspectRatio
)

// Reject is the error Process returns for an image it will not keep.
type Reject struct {
	Reason string // one of the Reason* codes
	Detail string // human-readable specifics
}

func (r *Reject) Error() string { return "imaging: " + r.Reason + ": " + r.Detail }

func reject(reason, format string, args ...any) *Reject {
	return &Reject{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// rgbImage is packed 8-bit RGB, stride 3*w.
type rgbImage struct {
	pix  []byte
	w, h int
}

// Processor turns input bytes into Results. It is not safe for concurrent
// use; create one per goroutine.
type Processor struct {
	opt     Options
	tj      *tjCodec // nil when using Go's codecs
	maxPix  int
	jpegOut bool

	noDCTScale bool     // tests: always decode JPEGs at full size
	goPasses   bool     // tests: use the Go resampling passes even with cgo
	yuvOK      bool     // JPEG output via libjpeg-turbo with its planar API: try the YUV path
	dct        dctState // dctdecode.c's tables; nil: the YUV path decodes with libjpeg-turbo only
	dctSkip    bool     // the current image goes to libjpeg-turbo
	dctDecodes int      // images dctdecode.c decoded (tests)

	// Reusable buffers.
	dec, rot, tmp, out []byte
	tmpT               []byte // transposes of the plane passes
	acc                []int32
	enc                []byte
	rgba               *image.RGBA
	encBuf             bytes.Buffer
	pngEnc             png.Encoder
	pngPool            pngPool
	rd                 bytes.Reader
	hk, vk, hkc, vkc   kernel // luma (and RGB) and chroma resampling
	yuvIn, yuvOut      []byte
	outW, outH         int
}

// NewProcessor validates opt and returns a Processor. Call Close when done
// to release the libjpeg-turbo handles early (a finalizer does it too).
func NewProcessor(opt Options) (*Processor, error) {
	if opt.Size == 0 {
		opt.Size = 256
	}
	if opt.Size < 0 || opt.Size > 1<<15 {
		return nil, fmt.Errorf("imaging: Options.Size %d out of range: use 1..32768 (e.g. 256)", opt.Size)
	}
	switch opt.Mode {
	case "":
		opt.Mode = CenterCrop
	case CenterCrop, KeepRatio, KeepRatioLargest, Border, NoResize:
	default:
		return nil, fmt.Errorf("imaging: Options.Mode %q unknown: use center_crop, keep_ratio, keep_ratio_largest, border or none", opt.Mode)
	}
	switch opt.Format {
	case "", "jpeg", "jpg":
		opt.Format = "jpeg"
	case "png":
	default:
		return nil, fmt.Errorf("imaging: Options.Format %q unknown: use jpeg or png", opt.Format)
	}
	if opt.Quality == 0 {
		opt.Quality = 95
	}
	if opt.Quality < 1 || opt.Quality > 100 {
		return nil, fmt.Errorf("imaging: Options.Quality %d out of range: use 1..100 (default 95)", opt.Quality)
	}
	if opt.MinImageSize < 0 || opt.MaxImageArea < 0 || opt.MaxAspectRatio < 0 {
		return nil, fmt.Errorf("imaging: negative size filter (MinImageSize %d, MaxImageArea %d, MaxAspectRatio %g): use 0 to turn a filter off",
			opt.MinImageSize, opt.MaxImageArea, opt.MaxAspectRatio)
	}
	if opt.MaxAspectRatio > 0 && opt.MaxAspectRatio < 1 {
		return nil, fmt.Errorf("imaging: Options.MaxAspectRatio %g is below 1, which rejects every image: use a value >= 1 or 0 for off", opt.MaxAspectRatio)
	}
	p := &Processor{opt: opt, jpegOut: opt.Format == "jpeg"}
	switch {
	case opt.MaxDecodePixels == 0:
		p.maxPix = DefaultMaxDecodePixels
	case opt.MaxDecodePixels > 0:
		p.maxPix = opt.MaxDecodePixels
	}
	if !opt.PureGo && loadTurbo() {
		tj, err := newTJCodec(true)
		if err != nil {
			return nil, err
		}
		p.tj = tj
		runtime.AddCleanup(p, func(c *tjCodec) { c.close() }, tj)
		p.yuvOK = p.jpegOut && haveTurboYUV()
		if p.yuvOK && dctDecoderOn {
			p.dct = newDCTState()
		}
	}
	p.pngEnc.BufferPool = &p.pngPool
	return p, nil
}

// Close releases the libjpeg-turbo handles. The Processor must not be used
// afterwards.
func (p *Processor) Close() {
	if p.tj != nil {
		p.tj.close()
		p.tj = nil
	}
}

// Backend reports which JPEG codec this Processor uses.
func (p *Processor) Backend() string {
	if p.tj != nil {
		return Backend()
	}
	if p.opt.PureGo {
		return "pure Go (forced by Options.PureGo)"
	}
	return Backend()
}

// Process decodes, filters, resizes and re-encodes one image. Errors are
// always *Reject. Result.Encoded is reused by the next call.
func (p *Processor) Process(data []byte) (res Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = Result{}, reject(ReasonDecode, "decoder panicked: %v", r)
		}
	}()
	if len(data) == 0 {
		return Result{}, reject(ReasonEmpty, "zero bytes")
	}
	f := sniff(data)
	if f == fmtUnknown {
		return Result{}, reject(ReasonFormat, "not a JPEG, PNG, GIF or WebP image (starts with %q)", head(data))
	}
	path := "rgb"
	done, ow, oh := false, 0, 0
	if f == fmtJPEG && p.yuvOK {
		done, ow, oh, err = p.processYUV(data)
		if err != nil {
			return Result{}, err
		}
		if done {
			path = "yuv"
		}
	}
	if !done {
		var img rgbImage
		img, ow, oh, err = p.decode(data, f)
		if err != nil {
			return Result{}, err
		}
		if err := p.resizeAndEncode(img); err != nil {
			return Result{}, err
		}
	}
	sum := sha256.Sum256(data)
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	res = Result{
		Encoded:        p.enc,
		Ext:            "jpg",
		Width:          p.outW,
		Height:         p.outH,
		OriginalWidth:  ow,
		OriginalHeight: oh,
		SHA256:         string(hx[:]),
		Path:           path,
	}
	if !p.jpegOut {
		res.Ext = "png"
	}
	return res, nil
}

func head(b []byte) []byte {
	if len(b) > 12 {
		return b[:12]
	}
	return b
}

// checkSize applies the bomb limit and the user's filters to the declared,
// upright size.
func (p *Processor) checkSize(w, h int) *Reject {
	if w <= 0 || h <= 0 {
		return reject(ReasonDecode, "header declares %dx%d pixels", w, h)
	}
	if p.maxPix > 0 && w*h > p.maxPix {
		return reject(ReasonTooLarge, "header declares %dx%d = %d pixels, over the decode limit %d (Options.MaxDecodePixels)", w, h, w*h, p.maxPix)
	}
	o := &p.opt
	if o.MaxImageArea > 0 && w*h > o.MaxImageArea {
		return reject(ReasonTooLarge, "%dx%d = %d pixels, over max_image_area %d", w, h, w*h, o.MaxImageArea)
	}
	if o.MinImageSize > 0 && min(w, h) < o.MinImageSize {
		return reject(ReasonTooSmall, "%dx%d, shorter side under min_image_size %d", w, h, o.MinImageSize)
	}
	if o.MaxAspectRatio > 0 && float64(max(w, h))/float64(min(w, h)) > o.MaxAspectRatio {
		return reject(ReasonAspectRatio, "%dx%d, aspect ratio %.3g over max_aspect_ratio %g", w, h, float64(max(w, h))/float64(min(w, h)), o.MaxAspectRatio)
	}
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/4)
	}
	return b[:n]
}
