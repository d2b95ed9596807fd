// Package train fits kediff's models from preprocessed shards: the base
// U-Net and text encoder on all timesteps, then the mixture of denoising
// experts, each fine-tuned on its block of timesteps (DESIGN.md 1.5).
//
// Layout:
//   - Loader (loader.go) streams shard rows (manifest.json) through a seeded
//     shuffle buffer on its own goroutine into TrainBatches:
//     float32 latents, tokens/mask/keyword (special_text form and w_a for
//     text_knowledge rows), the W_l loss weight (visual_knowledge rows) and the
//     classifier-free-guidance text drop: a dropped text is all [PAD] tokens
//     with an all-false mask (and no keyword scaling), the input a sampler's
//     unconditional half must repeat. Its LoaderState (epoch, samples
//     delivered) restarts the same stream; the shuffle and drop randomness are
//     functions of the seed and the position. In a data-parallel job every
//     rank walks the same stream and decodes only its slice of each global
//     batch, so the batches do not depend on the number of ranks.
//   - Trainer (trainer.go) runs TrainConfig: t uniform over [0, T) for the base
//     model or over expert N's block [N*T/n, (N+1)*T/n) (diffusion.Block); each
//     sample's noise and t from an RNG seeded by (seed, expert, step,
//     micro-batch, its index in the batch), so resuming is bit-identical on
//     CPU; AdamW with linear warm-up, gradient accumulation,
//     clipping, optional EMA. An expert starts from the base checkpoint and
//     freezes the text encoder (unet.IsTextEncoder: its gradients are zeroed
//     before clipping and AdamW skips it, weight decay included). The
//     checkpoint directory holds config.json, model.safetensors,
//     optimizer.safetensors (exp_avg.NAME, exp_avg_sq.NAME, step),
//     ema.safetensors, vocab.txt, train_config.json (with the noise schedule),
//     loss.png (package plots: the loss raw and smoothed, with axes),
//     dashboard.html (package dashboard: loss, grad norm, lr, throughput and
//     the sample grids on one self-contained page), metrics.jsonl and
//     state.json (written last, with the expert index and count), all of
//     them through temporary files, a commit journal and renames
//     (atomicfile.Batch: a full disk or a kill never leaves a mixed set). Rank 0 keeps the metrics it wrote, so the two
//     pictures cost a chart's drawing and each new grid's reading.
//   - Data parallelism (dataparallel.go): with TrainConfig.Comm (package
//     dist) N ranks train one model. Batch is the global batch; each rank runs
//     its slice (noise, t and dropout masks keyed by the sample's index in the
//     global batch, so the split changes nothing but float rounding), the
//     gradients are averaged in buckets that go out while the backward pass
//     still runs (unet.Model.GradsReady, as PyTorch DDP overlaps), every rank
//     starts from rank 0's weights and optimizer state, and only rank 0
//     writes. A checkpoint resumes on any number of ranks.
//   - Sample grids (grids.go, TrainConfig's sample_* fields or --sample-every):
//     every N steps the model in training samples fixed prompts through
//     package sample (an expert with its base for the other timesteps) into
//     OUT/samples/step-NNNNNN.png; the model's mode and dropout counter are
//     restored, so training stays bit-identical.
//
// The model is package unet, the noise schedule package diffusion, the
// tokenizer package tokenizer; package sample turns checkpoints into images.
package train
