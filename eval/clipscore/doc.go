// Package clipscore computes CLIP score, the agreement of generated images
// with their prompts, as torchmetrics' CLIPScore defines it: for each
// (image, prompt) pair, 100 times the cosine of the CLIP image and text
// embeddings, 0 where that is negative, and the mean over the pairs.
//
//	s, err := clipscore.Open("image.onnx", "text.onnx", "bpe_simple_vocab_16e6.txt.gz", clipscore.Options{})
//	if err != nil { ... }  // a model of the wrong layout, widths that differ, no tokenizer, ...
//	defer s.Close()
//	mean, per, err := s.Score(images, prompts) // images[i] was generated from prompts[i]
//
// The models are a CLIP's two encoders exported to ONNX by the user (the
// package downloads nothing): the image encoder takes normalised pixels
// [N,3,R,R] and returns the projected embedding [N,E]; the text encoder
// takes token ids [N,77] (int64 or int32, optionally with an
// attention_mask as Hugging Face exports have) and returns [N,E]. Pooling
// (the end token's features for OpenAI CLIP) lives inside the export, so
// the tokenizer only has to give the same ids. Open checks both models
// before any image is read.
//
// torchmetrics clamps per pair in its formula but its code clamps the
// mean; the two differ only when some pair's cosine is negative, which
// real CLIP models rarely give matching pairs. This package clamps per pair.
//
// # Images
//
// Images are prepared as open_clip's evaluation transform (torchvision on
// PIL images) does: converted to RGB, the shorter side resized to R with
// PIL's bicubic filter (package pilresize reproduces PIL's 8-bit
// resampling), a centred R x R crop, values divided by 255 and normalised
// with CLIP's mean and standard deviation. A preprocessor_config.json next to
// the image model (Hugging Face's CLIPImageProcessor) replaces the mean,
// standard deviation and filter, and centres the crop as Hugging Face does
// (rounding the offset down where torchvision rounds half to even).
//
// Two differences from PIL remain. Transparent images are flattened before
// resizing, where PIL resizes RGBA premultiplied: pixels that are not
// opaque may differ. And JPEG images are decoded by whoever calls Score;
// Go's decoder and libjpeg can differ by one level in a few pixels.
//
// # Tokenizer
//
// LoadTokenizer reads either open_clip's bpe_simple_vocab_16e6.txt.gz
// (OpenAI CLIP's merges; the 49408-token vocabulary is built from it) or a
// Hugging Face CLIPTokenizerFast tokenizer.json. Prompts become CLIP's
// byte-level BPE ids with the "</w>" end-of-word suffix between
// <|startoftext|> and <|endoftext|>, cut to the text model's context length
// with the end token kept, and padded with 0 (open_clip) or with the pad id
// the tokenizer.json (or a tokenizer_config.json beside it) names.
//
// Each form cleans text as its own library does. The tokenizer.json form
// does what CLIPTokenizerFast's normaliser does: NFC, whitespace runs to one
// space, lower case. The open_clip form does what open_clip's tokenizer
// does: ftfy.fix_text, HTML unescaping, whitespace, lower case; of ftfy it
// does the fixes that change ordinary prompts (HTML entities, Latin
// ligatures, full- and half-width forms such as Chinese "，", curly
// quotes, invisible control characters, NFC) and leaves out mojibake
// repair (for example "cafÃ©" stays as it is where ftfy makes "café"),
// C1 control decoding and terminal escape removal. Python's str.lower
// turns a final 'Σ' into 'ς'; this package always gives 'σ'. The ids
// match open_clip's on English with punctuation and digits, Chinese and
// emoji (byte tokens), accents, long prompts, odd whitespace and HTML
// entities (see the tests).
package clipscore
