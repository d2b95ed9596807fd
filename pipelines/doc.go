// Package pipelines assembles kediff's stages into runnable jobs.
//
// Preprocess is the one job so far: it expands an input pattern into input
// shards, keeps the shards assigned to this worker that have no complete
// output yet, and streams their samples through
//
//	read -> text (caption checks) -> image (decode, resize, encode)
//	     -> captioner (generated_caption; replaces the prompt for a hashed fraction)
//	     -> detect (objects, visual_knowledge, loss_mask; appends unmentioned kept labels)
//	     -> pos (words, POS classes, keywords of the final prompt)
//	     -> vae (latent, float16) -> write
//
// on a stages.Pipeline. The model stages (captioner, detect, vae) are off by
// default; each is a stages.Batch over the stream (its own batch size, two
// workers, 50 ms to fill a partial batch), working on the stored image
// decoded once by the image stage. Every enabled model is loaded and checked
// against its configured layout before any sample is read. A sample whose
// image a model cannot take, or whose outputs are NaN, becomes a reject of
// that stage (reasons model_input, model_nan); a failed model run fails the
// job. Relative model and label paths in a config file are resolved against
// the file's folder (pipelines/sample.yaml uses the bundled fixtures). Each input shard becomes one output shard of the
// same name; a sample that fails a check becomes a reject row with a reason,
// so rows + rejects always equals samples read.
package pipelines
