// Package train holds kediff's denoiser: GLIDE's Text2ImUNet (openai/glide-text2im,
// unet.py, text2im_model.py, xf.py) on Stable-Diffusion latents, written as a short
// driver over the ops of package kernels in the style of llm.c.
//
// The model predicts the noise eps of a 4-channel latent z_t given the timestep and
// a tokenized prompt. A transformer text encoder (token + positional embedding, a
// learned padding embedding where the mask is false, pre-LN blocks, final LayerNorm)
// produces one vector per token; the projection of the last token is added to the
// timestep embedding, and the whole sequence is projected into every U-Net attention
// block, whose image queries attend to the text keys/values concatenated before the
// image ones (DESIGN.md 1.2). ERNIE-ViLG's keyword weighting (DESIGN.md 1.3) scales
// the keys of image tokens and keyword text tokens by 1+w_a for the samples given a
// w_a > 0.
//
// Layout:
//   - ModelConfig (config.go) names GLIDE's create_model arguments; TinyConfig and
//     GLIDEConfig are presets.
//   - NewModel builds the module tree: every parameter is a kernels.View in one
//     kernels.Layout whose names are exactly the keys of the PyTorch model's
//     state_dict() ("input_blocks.1.0.in_layers.0.weight", ...), so a checkpoint
//     written by Save loads into glide-text2im's Text2ImUNet with strict=True.
//   - Activations and their gradients live in two flat buffers sized for one batch
//     size (SetBatch); Forward runs the layers in order, Backward in reverse and
//     accumulates into Params.Grad (zero it first with Params.ZeroGrad).
//   - Diffusion (diffusion.go) holds the noise schedule and q_sample; Loss and
//     TrainStep give the weighted eps-MSE of DESIGN.md 1.4 and one AdamW step.
//   - Save/Load (checkpoint.go) write and read config.json plus model.safetensors
//     (safetensors.go, written here, no dependency).
//   - Tokenizer (tokenizer.go): WordPiece-style, [PAD]=0, [UNK]=1, then the POS
//     class tokens of package pos; CJK characters are single tokens; each token
//     inherits its word's keyword flag, special tokens never are keywords.
//     VocabBuilder/BuildVocabFromData make vocab.txt (kediff vocab build).
//   - Loader (loader.go) streams shard rows (manifest.json, split by rank/world)
//     through a seeded shuffle buffer on its own goroutine into TrainBatches:
//     float32 latents, tokens/mask/keyword (special_text form and w_a for
//     text_knowledge rows), the W_l loss weight (visual_knowledge rows) and the
//     classifier-free-guidance text drop (all padding). Its LoaderState
//     (epoch, samples delivered) restarts the same stream; the shuffle and drop
//     randomness are functions of the seed and the position.
//   - Trainer (trainer.go) runs TrainConfig: t uniform over [0, T) for the base
//     model or over expert N's block [N*T/n, (N+1)*T/n); noise and t from an RNG
//     seeded by (seed, expert, step), so resuming is bit-identical on CPU; AdamW
//     with linear warm-up, gradient accumulation, clipping, optional EMA. An
//     expert starts from the base checkpoint and freezes the text encoder
//     (IsTextEncoder: its gradients are zeroed before clipping and AdamW skips
//     it, weight decay included). The checkpoint directory holds config.json,
//     model.safetensors, optimizer.safetensors (exp_avg.NAME, exp_avg_sq.NAME,
//     step), ema.safetensors, vocab.txt, train_config.json, loss.png,
//     metrics.jsonl and state.json (written last), each file via temp + rename.
//
// tools/train/reference.py is an independent PyTorch port of the same model; it
// writes the fixture the tests compare against (outputs, loss, every gradient and
// ten AdamW steps) and checks that a Go checkpoint loads with strict=True.
package train
