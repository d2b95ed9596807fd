//go:build cgo

// oneDNN 2.x convolutions through dlopen. The build needs neither dnnl.h nor
// -ldnnl: the few entry points are declared here with the 2.x C ABI, the
// descriptor structs are opaque buffers at least as large as 2.6's
// (dnnl_memory_desc_t 696 bytes, dnnl_convolution_desc_t 5976), and the
// enum values are those of dnnl_types.h 2.x. kd_dnnl_open refuses any other
// major version.

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "onednn.h"

typedef int st_t; // dnnl_status_t; 0 is success
typedef int64_t dims_t[12];
typedef struct { _Alignas(16) unsigned char b[2048]; } md_t;     // dnnl_memory_desc_t
typedef struct { _Alignas(16) unsigned char b[16384]; } opdesc_t; // dnnl_convolution_desc_t
typedef struct { int arg; void *mem; } arg_t;                    // dnnl_exec_arg_t
typedef struct { int major, minor, patch; const char *hash; unsigned cpu_runtime, gpu_runtime; } version_t;

enum { F32 = 3, TAG_ANY = 1, TAG_X = 2, TAG_NCHW = 5, TAG_OIHW = 5, ENGINE_CPU = 1, STREAM_DEFAULT = 1,
       FWD_TRAINING = 64, CONV_DIRECT = 1,
       Q_IMPL_INFO = 8, Q_SRC = 129, Q_DIFF_SRC = 130, Q_WEI = 131, Q_DIFF_WEI = 132, Q_DST = 133, Q_DIFF_DST = 134,
       A_SRC = 1, A_DST = 17, A_WEI = 33, A_BIAS = 41, A_DIFF_SRC = 129, A_DIFF_DST = 145, A_DIFF_WEI = 161,
       A_DIFF_BIAS = 169, A_FROM = 1, A_TO = 17 };

static struct {
	st_t (*engine_create)(void **, int, size_t);
	st_t (*stream_create)(void **, void *, unsigned);
	st_t (*stream_wait)(void *);
	st_t (*stream_destroy)(void *);
	st_t (*md_init_by_tag)(md_t *, int, const dims_t, int, int);
	int (*md_equal)(const md_t *, const md_t *);
	size_t (*md_size)(const md_t *);
	st_t (*conv_fwd_init)(opdesc_t *, int, int, const md_t *, const md_t *, const md_t *, const md_t *, const dims_t, const dims_t, const dims_t);
	st_t (*conv_bwd_d_init)(opdesc_t *, int, const md_t *, const md_t *, const md_t *, const dims_t, const dims_t, const dims_t);
	st_t (*conv_bwd_w_init)(opdesc_t *, int, const md_t *, const md_t *, const md_t *, const md_t *, const dims_t, const dims_t, const dims_t);
	st_t (*pd_create)(void **, const void *, const void *, void *, const void *);
	st_t (*pd_destroy)(void *);
	const md_t *(*pd_query_md)(const void *, int, int);
	st_t (*pd_query)(const void *, int, int, void *);
	st_t (*prim_create)(void **, const void *);
	st_t (*prim_execute)(const void *, void *, int, const arg_t *);
	st_t (*prim_destroy)(void *);
	st_t (*mem_create)(void **, const md_t *, void *, void *);
	st_t (*mem_set_handle)(void *, void *);
	st_t (*mem_destroy)(void *);
	st_t (*reorder_pd_create)(void **, const md_t *, void *, const md_t *, void *, const void *);
	st_t (*attr_create)(void **);
	st_t (*attr_destroy)(void *);
	st_t (*attr_set_post_ops)(void *, const void *);
	st_t (*post_ops_create)(void **);
	st_t (*post_ops_destroy)(void *);
	st_t (*post_ops_append_sum)(void *, float);
	const version_t *(*version)(void);
	void *engine, *sum_attr; // sum_attr: reorders that accumulate into their destination
	char desc[128];
} d;

const char *kd_dnnl_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		return e ? e : "dlopen failed";
	}
#define SYM(field, name) \
	if ((*(void **)&d.field = dlsym(h, name)) == NULL) return "symbol " name " not found (need oneDNN 2.x)";
	SYM(version, "dnnl_version")
	const version_t *v = d.version();
	if (v->major != 2) return "oneDNN major version is not 2 (this wrapper speaks the 2.x C API)";
	SYM(engine_create, "dnnl_engine_create")
	SYM(stream_create, "dnnl_stream_create")
	SYM(stream_wait, "dnnl_stream_wait")
	SYM(stream_destroy, "dnnl_stream_destroy")
	SYM(md_init_by_tag, "dnnl_memory_desc_init_by_tag")
	SYM(md_equal, "dnnl_memory_desc_equal")
	SYM(md_size, "dnnl_memory_desc_get_size")
	SYM(conv_fwd_init, "dnnl_convolution_forward_desc_init")
	SYM(conv_bwd_d_init, "dnnl_convolution_backward_data_desc_init")
	SYM(conv_bwd_w_init, "dnnl_convolution_backward_weights_desc_init")
	SYM(pd_create, "dnnl_primitive_desc_create")
	SYM(pd_destroy, "dnnl_primitive_desc_destroy")
	SYM(pd_query_md, "dnnl_primitive_desc_query_md")
	SYM(pd_query, "dnnl_primitive_desc_query")
	SYM(prim_create, "dnnl_primitive_create")
	SYM(prim_execute, "dnnl_primitive_execute")
	SYM(prim_destroy, "dnnl_primitive_destroy")
	SYM(mem_create, "dnnl_memory_create")
	SYM(mem_set_handle, "dnnl_memory_set_data_handle")
	SYM(mem_destroy, "dnnl_memory_destroy")
	SYM(reorder_pd_create, "dnnl_reorder_primitive_desc_create")
	SYM(attr_create, "dnnl_primitive_attr_create")
	SYM(attr_destroy, "dnnl_primitive_attr_destroy")
	SYM(attr_set_post_ops, "dnnl_primitive_attr_set_post_ops")
	SYM(post_ops_create, "dnnl_post_ops_create")
	SYM(post_ops_destroy, "dnnl_post_ops_destroy")
	SYM(post_ops_append_sum, "dnnl_post_ops_append_sum")
#undef SYM
	if (d.engine_create(&d.engine, ENGINE_CPU, 0)) return "dnnl_engine_create failed";
	void *po;
	if (d.attr_create(&d.sum_attr) || d.post_ops_create(&po) || d.post_ops_append_sum(po, 1.0f) ||
	    d.attr_set_post_ops(d.sum_attr, po))
		return "building the accumulate (sum) reorder attribute failed";
	d.post_ops_destroy(po);
	snprintf(d.desc, sizeof d.desc, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
	return NULL;
}

const char *kd_dnnl_version(void) { return d.desc; }

// A plain user buffer bound at each call, the primitive's own layout, and
// the reorder between them when they differ (NULL reorder: the primitive
// uses the user buffer directly).
typedef struct {
	md_t plain;
	const md_t *inner; // owned by the primitive descriptor
	void *user, *own;  // memories: user (handle set per call), own (allocated)
	void *reorder, *reorder_pd;
} port;

struct kd_conv {
	void *stream; // its own, so that Convs used from different threads never share one
	void *fwd_pd, *bwd_d_pd, *bwd_w_pd;
	void *fwd, *bwd_d, *bwd_w;
	port src, wei, bias, dst;                  // forward
	port d_ddst, d_wei, d_dsrc;                // backward data
	port w_src, w_ddst, w_dwei;                // backward weights
	void *dbias;                               // backward weights' bias gradient (own, plain)
	float *dbias_buf, *zero_bias;
	int OC;
	char impl[160];
};

// port_init prepares p for a primitive whose layout is inner; to_inner says
// the data flows user -> primitive (an input), else primitive -> user,
// accumulating when acc is set.
static const char *port_init(port *p, const md_t *inner, int to_inner, int acc) {
	p->inner = inner;
	if (d.mem_create(&p->user, &p->plain, d.engine, NULL)) return "dnnl_memory_create (user)";
	if (!acc && d.md_equal(&p->plain, inner)) return NULL;
	if (d.mem_create(&p->own, inner, d.engine, (void *)-1)) return "dnnl_memory_create (own)";
	const md_t *from = to_inner ? &p->plain : inner, *to = to_inner ? inner : &p->plain;
	if (d.reorder_pd_create(&p->reorder_pd, from, d.engine, to, d.engine, acc ? d.sum_attr : NULL)) return "dnnl_reorder_primitive_desc_create";
	if (d.prim_create(&p->reorder, p->reorder_pd)) return "dnnl_primitive_create (reorder)";
	return NULL;
}

static void port_free(port *p) {
	if (p->reorder) d.prim_destroy(p->reorder);
	if (p->reorder_pd) d.pd_destroy(p->reorder_pd);
	if (p->own) d.mem_destroy(p->own);
	if (p->user) d.mem_destroy(p->user);
}

// port_in binds the user buffer and returns the memory the primitive reads.
static void *port_in(void *stream, port *p, const void *buf, st_t *rc) {
	*rc |= d.mem_set_handle(p->user, (void *)buf);
	if (!p->reorder) return p->user;
	arg_t a[2] = {{A_FROM, p->user}, {A_TO, p->own}};
	*rc |= d.prim_execute(p->reorder, stream, 2, a);
	return p->own;
}

// port_out binds the user buffer and returns the memory the primitive writes.
static void *port_out(port *p, void *buf, st_t *rc) {
	*rc |= d.mem_set_handle(p->user, buf);
	return p->reorder ? p->own : p->user;
}

// port_done copies (or accumulates) the primitive's result to the user buffer.
static void port_done(void *stream, port *p, st_t *rc) {
	if (!p->reorder) return;
	arg_t a[2] = {{A_FROM, p->own}, {A_TO, p->user}};
	*rc |= d.prim_execute(p->reorder, stream, 2, a);
}

void kd_conv_free(kd_conv *c) {
	if (!c) return;
	port *ports[] = {&c->src, &c->wei, &c->bias, &c->dst, &c->d_ddst, &c->d_wei, &c->d_dsrc, &c->w_src, &c->w_ddst, &c->w_dwei};
	for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) port_free(ports[i]);
	if (c->dbias) d.mem_destroy(c->dbias);
	if (c->stream) d.stream_destroy(c->stream);
	void *prims[] = {c->fwd, c->bwd_d, c->bwd_w, c->fwd_pd, c->bwd_d_pd, c->bwd_w_pd};
	for (int i = 0; i < 3; i++) if (prims[i]) d.prim_destroy(prims[i]);
	for (int i = 3; i < 6; i++) if (prims[i]) d.pd_destroy(prims[i]);
	free(c->dbias_buf);
	free(c->zero_bias);
	free(c);
}

const char *kd_conv_impl(kd_conv *c) { return c->impl; }

kd_conv *kd_conv_new(int B, int C, int H, int W, int OC, int K, int stride, int pad, const char **err) {
	kd_conv *c = calloc(1, sizeof *c);
	if (!c) { *err = "out of memory"; return NULL; }
	c->OC = OC;
	if (d.stream_create(&c->stream, d.engine, STREAM_DEFAULT)) { *err = "dnnl_stream_create"; free(c); return NULL; }
	int OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
	// Right/bottom padding so that oneDNN's output size equals PyTorch's floor.
	dims_t sd = {B, C, H, W}, wd = {OC, C, K, K}, dd = {B, OC, OH, OW}, bd = {OC};
	dims_t strides = {stride, stride}, pl = {pad, pad},
	       pr = {(OH - 1) * stride + K - H - pad, (OW - 1) * stride + K - W - pad};
	md_t any_s, any_w, any_d, plain_b;
#define TRY(call, what) if (call) { *err = what; kd_conv_free(c); return NULL; }
	TRY(d.md_init_by_tag(&any_s, 4, sd, F32, TAG_ANY) || d.md_init_by_tag(&any_w, 4, wd, F32, TAG_ANY) ||
	    d.md_init_by_tag(&any_d, 4, dd, F32, TAG_ANY) || d.md_init_by_tag(&plain_b, 1, bd, F32, TAG_X), "dnnl_memory_desc_init_by_tag")
	port *srcs[] = {&c->src, &c->w_src}, *weis[] = {&c->wei, &c->d_wei, &c->w_dwei},
	     *dsts[] = {&c->dst, &c->d_ddst, &c->w_ddst};
	for (int i = 0; i < 2; i++) TRY(d.md_init_by_tag(&srcs[i]->plain, 4, sd, F32, TAG_NCHW), "md (src)")
	TRY(d.md_init_by_tag(&c->d_dsrc.plain, 4, sd, F32, TAG_NCHW), "md (diff src)")
	for (int i = 0; i < 3; i++) TRY(d.md_init_by_tag(&weis[i]->plain, 4, wd, F32, TAG_OIHW), "md (weights)")
	for (int i = 0; i < 3; i++) TRY(d.md_init_by_tag(&dsts[i]->plain, 4, dd, F32, TAG_NCHW), "md (dst)")
	c->bias.plain = plain_b;

	opdesc_t *od = malloc(sizeof *od);
	TRY(!od, "out of memory")
	int bad = d.conv_fwd_init(od, FWD_TRAINING, CONV_DIRECT, &any_s, &any_w, &plain_b, &any_d, strides, pl, pr) ||
	          d.pd_create(&c->fwd_pd, od, NULL, d.engine, NULL);
	bad = bad || d.conv_bwd_d_init(od, CONV_DIRECT, &any_s, &any_w, &any_d, strides, pl, pr) ||
	      d.pd_create(&c->bwd_d_pd, od, NULL, d.engine, c->fwd_pd);
	bad = bad || d.conv_bwd_w_init(od, CONV_DIRECT, &any_s, &any_w, &plain_b, &any_d, strides, pl, pr) ||
	      d.pd_create(&c->bwd_w_pd, od, NULL, d.engine, c->fwd_pd);
	free(od);
	TRY(bad, "no oneDNN convolution for this shape")
	TRY(d.prim_create(&c->fwd, c->fwd_pd) || d.prim_create(&c->bwd_d, c->bwd_d_pd) || d.prim_create(&c->bwd_w, c->bwd_w_pd),
	    "dnnl_primitive_create (convolution)")

	const char *e;
#define PORT(p, pd, q, in, acc) if ((e = port_init(p, d.pd_query_md(c->pd, q, 0), in, acc))) { *err = e; kd_conv_free(c); return NULL; }
	PORT(&c->src, fwd_pd, Q_SRC, 1, 0)
	PORT(&c->wei, fwd_pd, Q_WEI, 1, 0)
	PORT(&c->dst, fwd_pd, Q_DST, 0, 0)
	TRY(d.mem_create(&c->bias.user, &plain_b, d.engine, NULL), "dnnl_memory_create (bias)")
	PORT(&c->d_ddst, bwd_d_pd, Q_DIFF_DST, 1, 0)
	PORT(&c->d_wei, bwd_d_pd, Q_WEI, 1, 0)
	PORT(&c->d_dsrc, bwd_d_pd, Q_DIFF_SRC, 0, 1)
	PORT(&c->w_src, bwd_w_pd, Q_SRC, 1, 0)
	PORT(&c->w_ddst, bwd_w_pd, Q_DIFF_DST, 1, 0)
	PORT(&c->w_dwei, bwd_w_pd, Q_DIFF_WEI, 0, 1)
#undef PORT
	c->dbias_buf = malloc(sizeof(float) * OC);
	c->zero_bias = calloc(OC, sizeof(float)); // forward without a bias
	TRY(!c->dbias_buf || !c->zero_bias || d.mem_create(&c->dbias, &plain_b, d.engine, c->dbias_buf), "dnnl_memory_create (bias gradient)")
#undef TRY
	const char *impl = "";
	d.pd_query(c->fwd_pd, Q_IMPL_INFO, 0, &impl);
	snprintf(c->impl, sizeof c->impl, "%s", impl);
	return c;
}

const char *kd_conv_forward(kd_conv *c, float *out, const float *inp, const float *weight, const float *bias) {
	st_t rc = 0;
	rc |= d.mem_set_handle(c->bias.user, bias ? (void *)bias : (void *)c->zero_bias);
	arg_t a[4] = {{A_SRC, port_in(c->stream, &c->src, inp, &rc)}, {A_WEI, port_in(c->stream, &c->wei, weight, &rc)},
	              {A_DST, port_out(&c->dst, out, &rc)}, {A_BIAS, c->bias.user}};
	rc |= d.prim_execute(c->fwd, c->stream, 4, a);
	port_done(c->stream, &c->dst, &rc);
	rc |= d.stream_wait(c->stream);
	return rc ? "convolution forward" : NULL;
}

const char *kd_conv_backward(kd_conv *c, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight) {
	st_t rc = 0;
	if (dinp) {
		arg_t a[3] = {{A_DIFF_DST, port_in(c->stream, &c->d_ddst, dout, &rc)}, {A_WEI, port_in(c->stream, &c->d_wei, weight, &rc)},
		              {A_DIFF_SRC, port_out(&c->d_dsrc, dinp, &rc)}};
		rc |= d.prim_execute(c->bwd_d, c->stream, 3, a);
		port_done(c->stream, &c->d_dsrc, &rc);
	}
	// The backward-data pass already reordered dout; reuse it when both
	// primitives want the same layout.
	void *ddst = (dinp && c->d_ddst.reorder && d.md_equal(c->d_ddst.inner, c->w_ddst.inner))
	                 ? c->d_ddst.own : port_in(c->stream, &c->w_ddst, dout, &rc);
	arg_t a[4] = {{A_SRC, port_in(c->stream, &c->w_src, inp, &rc)}, {A_DIFF_DST, ddst},
	              {A_DIFF_WEI, port_out(&c->w_dwei, dweight, &rc)}, {A_DIFF_BIAS, c->dbias}};
	rc |= d.prim_execute(c->bwd_w, c->stream, 4, a);
	port_done(c->stream, &c->w_dwei, &rc);
	rc |= d.stream_wait(c->stream);
	if (dbias)
		for (int i = 0; i < c->OC; i++) dbias[i] += c->dbias_buf[i];
	return rc ? "convolution backward" : NULL;
}
