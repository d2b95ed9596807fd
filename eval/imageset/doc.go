// Package imageset reads the image sets that kediff's metrics take: the
// images a model generated and the images they are compared with, each with
// the prompt that goes with it.
//
//	s, err := imageset.Open(ctx, "out/samples")   // or shards, tars, a folder
//	if err != nil { ... }                         // nothing there, not a set, ...
//	err = s.Each(ctx, func(it imageset.Item) error {
//		// it.Image is decoded, it.Prompt is its text, it.Key names it
//		return nil
//	})
//
// Open recognises, from what the URL holds:
//
//   - a kediff sample output folder (KindSamples): NNNNN.png files listed in
//     samples.jsonl, which gives each image's prompt (package sample);
//   - kediff Parquet shards (KindShards): a preprocessing output folder (only
//     the complete shards its manifest.json lists, when it has one), or
//     NNNNN.parquet files; the prompt is the shard's prompt column, the text
//     the model was trained on, not the input caption. The NNNNN_rejects.parquet
//     files beside them hold no images and are skipped;
//   - any other input that package shards reads (KindInput): WebDataset tars,
//     Parquet files with image bytes, folders of images with .txt sidecars,
//     and patterns of them (see shards.Expand); the prompt is the caption.
//     In image folders the .txt sidecar is optional (FID needs no prompt):
//     an image without one has an empty prompt.
//
// Each decodes one image at a time, so a set of any size takes the memory of
// one image (plus what the caller keeps). Nothing is dropped silently: a
// sample the reader rejects (a caption without an image, an unsafe tar
// member, a tar image without a caption, ...) and an image that does not
// decode are counted, and Each ends with a *BadItemsError naming how many
// and the first few keys, after giving fn every good item. A set with no
// items at all is an error too.
//
// Fingerprint hashes a set's listing (names, sizes, modification times and
// checksums of its files), so that a metric can cache what it computed from
// a set and know when the set has changed.
package imageset
