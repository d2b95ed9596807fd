// Package caption generates image captions with a vision-encoder-decoder
// model exported to ONNX the way Hugging Face optimum exports one, and decides
// which samples train on the generated caption instead of their own
// (ERNIE-ViLG 2.0's caption replacement, DESIGN.md 1.4).
//
// A model folder holds
//
//	encoder_model.onnx        pixel_values [N,3,H,W] float32 -> last_hidden_state [N,S,D]
//	decoder_model.onnx        input_ids [N,L] int64, encoder_hidden_states [N,S,D] -> logits [N,L,V]
//	                          (attention_mask / encoder_attention_mask inputs, when present, get ones;
//	                          present.* outputs are ignored)
//	preprocessor_config.json  resize, rescale and normalize settings (ViTImageProcessor fields)
//	tokenizer.json            Hugging Face tokenizers format: WordPiece or byte-level BPE
//	config.json               decoder_start_token_id (or bos_token_id), eos_token_id, max_length
//	generation_config.json    optional; read before config.json
//
// Use:
//
//	c, err := caption.Open(dir, caption.Options{BatchSize: 16})
//	if err != nil { ... }   // missing file, not ONNX, wrong layout: the error names file, tensor, shapes
//	defer c.Close()
//	res := c.GenerateEach(images, caption.Search{NumBeams: 3, MaxLength: 24})
//	for i, r := range res { if r.Err != nil { reject(i, r.Err) } else { use(r.Caption) } }
//	prompt, source := caption.Choose(key, original, res[i].Caption, seed, 0.3)
//
// Generation is batched: one encoder run per batch of images, then one
// decoder run per step over all live beams of the batch. The decoder has no
// key/value cache (decoder_model.onnx, not decoder_with_past_model.onnx): each
// step re-runs it over the whole prefix, which is quadratic in the caption
// length and cheap at caption lengths. Greedy decoding is the beam width 1
// case; search.go documents the beam rule, which tools/caption/train.py's
// PyTorch reference implements too.
//
// The fixture in testdata/model is a tiny captioner that tools/caption/train.py
// trains on kediff's synthetic shapes (English captions, flat 64x64 images);
// testdata/refs.json holds its PyTorch greedy and beam decodes of the held-out
// images in testdata/heldout.
package caption
