// Package sample turns trained checkpoints into images: the inference half
// of ERNIE-ViLG 2.0 (DESIGN.md 1.1, 1.5 and 1.7).
//
//	prompt -> tokenizer -> text encoder (once per prompt)
//	       -> denoising loop: each step t on the checkpoint whose block holds t,
//	          both classifier-free-guidance halves in one batched forward
//	       -> autoencoder decoder -> PNG files
//
// A Mixture routes timesteps: expert N of n denoises [N*T/n, (N+1)*T/n), the
// base model every timestep no expert holds. NewMixture refuses checkpoints
// that are not one mixture: different model configs, vocabularies, noise
// schedules or text encoders (compared tensor by tensor; the experts'
// encoder is the base's, frozen), blocks claimed twice or overlapping, and
// blocks left uncovered without a base. OpenCheckpoint reads a folder's
// config.json, vocab.txt, train_config.json (the schedule), state.json (the
// expert index) and the header and text-encoder tensors of
// model.safetensors; the U-Net weights are read only when the first step
// routed to the checkpoint comes, and dropped after its last, while every
// batch takes those steps, so memory holds one model (U-Net and text
// encoder) however many experts there are.
//
// Run's loop, with diffusers' schedulers (package diffusion) and names:
//
//   - the text encoder (embeddings, transformer, final LayerNorm) runs once
//     per prompt, before the first step, never per step; the unconditional
//     input is exactly what training feeds for a dropped text: text_ctx [PAD] tokens (id 0), an
//     all-false mask, no keyword scaling (Unconditional). Prompts are used as
//     written (no POS special text, no keyword weighting: DESIGN.md 1.4);
//     tokens past text_ctx are dropped with a warning;
//   - every step runs the U-Net on [x_t; x_t] with [unconditional; prompt]
//     and combines eps = eps_uncond + s (eps_cond - eps_uncond), s = 2.1 by
//     default; s = 1 runs the conditional half alone;
//   - image i of a run owns a PCG generator seeded with seed + i: it draws
//     x_T (N(0, 1), C x H x W in order), then z for every step whose sigma is
//     not 0. Images therefore do not depend on the batch they fall in or on
//     the order in which checkpoints take their steps; a non-finite eps or
//     latent stops the run naming the step and the checkpoint.
//
// Write stores a run as DESIGN.md 3.5 has it: NNNNN.png per image (prompt,
// seed, steps, guidance, scheduler and the checkpoints' SHA-256 in iTXt
// chunks), grid.png, samples.jsonl and, on request, latents-NNNNN.safetensors
// per batch with x_T, the exact tokens and mask of both halves (int64/bool,
// as kediff model run reads them), x_0, the timesteps and any step noise.
package sample
