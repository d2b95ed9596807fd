// Package tokenizer turns prompts into the token ids the text encoder reads:
// a WordPiece-style tokenizer over a vocab.txt (BERT's format, one token per
// line) whose first ids are [PAD] = 0, [UNK] = 1 and the POS class tokens of
// package pos ("[n]", "[a]", ...) that textual knowledge inserts.
//
// CJK characters and punctuation are single tokens; runs of letters and
// digits are lowercased and split into the longest vocabulary pieces
// ("##" marks a continuation). EncodeWords tokenizes the POS stage's words so
// that every token inherits its word's keyword flag; Pad fixes the length to
// the model's text_ctx and returns the mask of real tokens (padding is
// [PAD], never a keyword). VocabBuilder counts prompts and builds a
// vocabulary in which every seen word can be spelled.
package tokenizer
