// Package vae encodes images into Stable-Diffusion-style autoencoder latents
// (the latent column of the preprocessing shards, DESIGN.md 1.1) and decodes
// latents back into images for sampling, with ONNX exports of the
// autoencoder:
//
//	vae_encoder.onnx  sample [N,3,H,W] in [-1,1] -> latent_parameters [N,2C,H/8,W/8]
//	                  (mean, then log-variance; optimum's export) or
//	                  latent_sample [N,C,H/8,W/8] (older diffusers exports)
//	vae_decoder.onnx  latent_sample [N,C,h,w] -> sample [N,3,8h,8w] in about [-1,1]
//
// A path may be the .onnx file or a folder holding vae_encoder/model.onnx
// (optimum's Stable Diffusion layout), vae_encoder.onnx or model.onnx.
//
// The encoder maps pixels x in 0..255 to x/127.5 - 1, takes the latent mean
// (or, with Options.Sample, a draw mean + std * eps with noise seeded by the
// sample key) and multiplies it by the scaling factor (0.18215 unless
// Options or a diffusers config.json say otherwise). A latent is stored as
// little-endian IEEE float16 bytes (Latent.Float16, converted here with
// round-to-nearest-even) with its shape [C, H/8, W/8]; in Python:
//
//	np.frombuffer(row["latent"], "<f2").reshape(row["latent_shape"])
//
// The decoder divides by the scaling factor, runs the model and maps its
// output back to [0, 1].
//
// Both run batches of Options.BatchSize (images of one size share a run).
// Images the model cannot take (nil, sides not multiples of 8, not the size
// of a model with a static input) and non-finite outputs give a per-image
// error, so the pipeline can reject that row and go on.
//
// The fixture in testdata/model is a tiny autoencoder that tools/vae/train.py
// trains on kediff's synthetic shapes; testdata/refs.json holds PyTorch's
// latent_parameters of the held-out images in testdata/heldout.
package vae
