//go:build cgo

#ifndef KD_ONEDNN_H
#define KD_ONEDNN_H
#include <stdint.h>

typedef struct kd_conv kd_conv;

// kd_dnnl_open loads libdnnl (oneDNN 2.x) from path; NULL on success, else a
// description of the problem.
const char *kd_dnnl_open(const char *path);
const char *kd_dnnl_version(void);

// kd_conv_new builds the forward, backward-data and backward-weights
// primitives of one convolution shape; NULL with *err set on failure.
kd_conv *kd_conv_new(int B, int C, int H, int W, int OC, int K, int stride, int pad, const char **err);
void kd_conv_free(kd_conv *c);
const char *kd_conv_impl(kd_conv *c);

// All buffers are plain row-major NCHW / OIHW float32. Forward overwrites
// out; backward accumulates (+=) into dinp (may be NULL), dweight and dbias
// (may be NULL). They return NULL or the failing call's name.
const char *kd_conv_forward(kd_conv *c, float *out, const float *inp, const float *weight, const float *bias);
const char *kd_conv_backward(kd_conv *c, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight);
#endif
