// Package pipelines assembles kediff's stages into runnable jobs.
//
// Preprocess is the one job so far: it expands an input pattern into input
// shards, keeps the shards assigned to this worker that have no complete
// output yet, and streams their samples through
//
//	read -> text (caption checks) -> pos (words, POS classes, keywords)
//	     -> image (decode, resize, encode) -> write
//
// on a stages.Pipeline. Each input shard becomes one output shard of the
// same name; a sample that fails a check becomes a reject row with a reason,
// so rows + rejects always equals samples read.
package pipelines
