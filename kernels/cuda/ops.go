package cuda

// op numbers the kernels of csrc/kd_api.h's kd_run; opNames must list the
// C library's names in the same order (openLibrary checks it).
type op int

const (
	opGemm op = iota
	opConvFwd
	opConvBwd
	opGroupNormFwd
	opGroupNormBwd
	opLayerNormFwd
	opLayerNormBwd
	opLinearFwd
	opLinearBwd
	opSiLUFwd
	opSiLUBwd
	opGELUFwd
	opGELUBwd
	opDropoutFwd
	opDropoutBwd
	opSoftmaxFwd
	opSoftmaxBwd
	opAttnFwd
	opAttnBwd
	opPermute
	opPermuteBwd
	opEmbedFwd
	opEmbedBwd
	opTimestep
	opUpsampleFwd
	opUpsampleBwd
	opPoolFwd
	opPoolBwd
	opAdd
	opAccumulate
	opScaleShiftFwd
	opScaleShiftBwd
	opConcatFwd
	opConcatBwd
	opMSEFwd
	opMSEBwd
	opClip
	opAdamW
	opEMA
	opCount
)

var opNames = [opCount]string{
	"gemm", "conv_fwd", "conv_bwd", "groupnorm_fwd", "groupnorm_bwd", "layernorm_fwd", "layernorm_bwd",
	"linear_fwd", "linear_bwd", "silu_fwd", "silu_bwd", "gelu_fwd", "gelu_bwd", "dropout_fwd",
	"dropout_bwd", "softmax_fwd", "softmax_bwd", "attn_fwd", "attn_bwd", "permute", "permute_bwd",
	"embed_fwd", "embed_bwd", "timestep", "upsample_fwd", "upsample_bwd", "pool_fwd", "pool_bwd",
	"add", "accumulate", "scaleshift_fwd", "scaleshift_bwd", "concat_fwd", "concat_bwd", "mse_fwd",
	"mse_bwd", "clip", "adamw", "ema",
}

func (o op) String() string { return opNames[o] }

// Element types of device buffers (csrc/kd_common.h).
const (
	dtF32  = 0
	dtBF16 = 1
)

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
