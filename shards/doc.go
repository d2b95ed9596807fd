// Package shards reads image-text pairs from input shards and writes kediff's
// Parquet training shards, all through gocloud.dev/blob URLs.
//
// Inputs are WebDataset tar files (as img2dataset writes them), Parquet files
// with image bytes (img2dataset's and Hugging Face datasets' layouts) and folders
// of images with .txt caption sidecars. Every input sample becomes a Sample;
// problems found while reading (an unsafe tar member, a caption without an
// image) become Samples with a Reject reason, so that nothing is lost silently.
//
// Outputs are NNNNN.parquet (one Row per sample, zstd), NNNNN_rejects.parquet,
// NNNNN_stats.json (written last: the shard's success marker) and a dataset
// manifest.json.
package shards
