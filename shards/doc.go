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
// manifest.json. A ShardWriter writes one output shard; Complete tells a re-run
// which shards are done (their stats file exists and adds up) so that it skips
// them and redoes the rest; WriteManifest summarises the complete shards. Each
// Parquet file carries the pipeline version and config, and Hugging Face
// features, in its key-value metadata: pandas, DuckDB and datasets open it
// without kediff code, and datasets shows the image column as images.
package shards
