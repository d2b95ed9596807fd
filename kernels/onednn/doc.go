// Package onednn runs 2-D convolutions (forward, backward data, backward
// weights) on oneDNN 2.x, the library PyTorch's own CPU convolutions use,
// loaded at run time from Debian's libdnnl2. On CPUs with AVX-512 its
// blocked-layout kernels run a U-Net's 3x3 convolutions about twice as fast
// as im2col plus sgemm. kernels.CPU uses it when it loads and falls back to
// its own im2col path otherwise; the package needs no header or library at
// build time.
//
// Buffers are plain float32 NCHW (activations) and OIHW (weights), as in
// kernels and PyTorch; each Conv converts to and from oneDNN's preferred
// layouts itself.
package onednn
