// Package pilresize resizes images exactly as Pillow's Image.resize does with
// the BILINEAR and BICUBIC filters, so that metrics defined on PIL-resized
// pixels (clean-fid's "clean" FID, CLIP's preprocessing) come out the same in
// Go.
//
// Pillow resamples in two separable passes, horizontal then vertical, with a
// filter whose support is widened by the scale factor when downscaling (that
// is its antialiasing) and whose weights are normalised to sum to one per
// output pixel. Two of its pixel modes are reproduced:
//
//   - ResizePlane is mode "F" (one float32 plane): double-precision weights,
//     double accumulation, float32 storage after each pass, as
//     Image.fromarray(x, mode="F").resize((dw, dh), resample).
//   - ResizeRGB8 is mode "RGB" (interleaved 8-bit): the weights become 22-bit
//     fixed-point integers, each pass accumulates in int32 with a rounding
//     half, then shifts and clips to 0..255, as
//     Image.fromarray(x, mode="RGB").resize((dw, dh), resample).
//
// Both match Pillow bit for bit (tools/eval/pil_resize.py is the reference the
// tests run). A resize to the same size returns a copy, as Pillow does. Only
// whole-image resizes are supported (no box argument, no reducing_gap).
//
//	out := pilresize.ResizeRGB8(pix, 640, 480, 224, 168, pilresize.Bicubic)
package pilresize
