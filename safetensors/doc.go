// Package safetensors reads and writes the safetensors format
// (huggingface/safetensors): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range (plus optional
// string metadata), then the raw little-endian data. kediff's checkpoints,
// optimizer states, model inputs and sampled latents are such files, so
// PyTorch opens them with safetensors.torch.load_file and no kediff code.
//
// Decode and ReadFile check the file as the reference implementation does
// (header bounds, dtype sizes, byte ranges that tile the data exactly);
// ReadHeader parses only the header so that single tensors can be read with
// ReadAt. There is no dependency: the format is small enough to write here.
package safetensors
