// Package unet is kediff's denoiser: GLIDE's Text2ImUNet (openai/glide-text2im,
// unet.py, text2im_model.py, xf.py) on Stable-Diffusion latents, the text
// encoder and the U-Net together, written as a short driver over the ops of
// package kernels in the style of llm.c.
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
//   - Config (config.go) names GLIDE's create_model arguments; TinyConfig and
//     GLIDEConfig are presets.
//   - NewModel builds the module tree: every parameter is a kernels.View in one
//     kernels.Layout whose names are exactly the keys of the PyTorch model's
//     state_dict() ("input_blocks.1.0.in_layers.0.weight", ...), so a checkpoint
//     written by Save loads into glide-text2im's Text2ImUNet with strict=True.
//     IsTextEncoder names the shared text encoder's parameters (embeddings,
//     transformer, final LayerNorm), which experts keep frozen.
//   - Activations and their gradients live in two flat buffers sized for one batch
//     size (SetBatch); Forward runs the layers in order, Backward in reverse and
//     accumulates into Params.Grad (zero it first with Params.ZeroGrad).
//   - EncodeText runs the text encoder alone and ForwardEncoded the rest of the
//     model on its output, so a sampler encodes a prompt once and hands the
//     result to any expert (every expert applies its own projections of it).
//   - Loss and TrainStep (loss.go) give the weighted eps-MSE of DESIGN.md 1.4
//     and one AdamW step.
//   - Save/Load (checkpoint.go) write and read config.json plus
//     model.safetensors (package safetensors); BatchFromTensors reads model
//     inputs as PyTorch saves them (kediff model run).
//
// tools/train/reference.py is an independent PyTorch port of the same model; it
// writes the fixture the tests compare against (outputs, loss, every gradient and
// ten AdamW steps) and checks that a Go checkpoint loads with strict=True.
package unet
