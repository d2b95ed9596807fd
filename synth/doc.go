// Package synth generates kediff's bundled sample data: small bilingual
// image-text sets of coloured shapes, written as img2dataset-style WebDataset
// tar shards, so that every pipeline runs offline on data whose ground truth
// is known.
//
// A scene holds 1 to 3 non-overlapping shapes drawn from a fixed vocabulary
// (Labels, Colors) in three size classes. Render draws one scene with
// anti-aliased edges and returns its ground truth: each object's label and
// colour in English and Chinese and its tight pixel box, plus one English and
// one Chinese caption made by a small, regular grammar that depends only on
// what is visible, so that a captioner can learn to reproduce it exactly:
//
//	a red circle                          一个红色的圆形
//	a yellow star to the left of a green triangle
//	                                      绿色三角形左边有一个黄色的五角星
//	a big white hexagon above a small black square
//	                                      黑色小正方形上面有一个白色的大六边形
//	an orange ellipse and a small blue square
//	                                      一个橙色的椭圆和一个蓝色的小正方形
//	a red circle, a blue star and a white hexagon
//	                                      一个红色的圆形、一个蓝色的五角星和一个白色的六边形
//
// See Caption for the grammar. With Options.Photo the background is busy and
// photo-like (smooth gradients, low-frequency blobs, fractal texture, mild
// noise), so JPEG sizes and decoding costs resemble real photographs; without
// it the background is one flat muted colour.
//
// Generate writes Samples samples into shards 00000.tar, 00001.tar, ...
// through a blob URL. Each sample is three members sharing a 9-digit key
// (shard*PerShard + i, as img2dataset numbers them):
//
//	000000000.jpg   the image (image/jpeg, Options.Quality)
//	000000000.txt   the caption: Chinese or English, per Options.Lang
//	000000000.json  {"key","caption","caption_en","caption_zh","width","height",
//	                 "objects":[{"label","label_zh","color","color_zh","size","box"}],"seed"}
//
// Boxes are [x0,y0,x1,y1] in pixel-edge coordinates of the stored image: pixel
// (x, y) lies in the box when x0 <= x < x1 and y0 <= y < y1. A box is the
// smallest one holding every pixel that the shape covers at least half.
//
// Output is deterministic: the same Options give byte-identical tar files.
// Sample k is drawn from rand.New(rand.NewPCG(Seed, k)) whatever the shard
// size, so Render reproduces any sample on its own. With Options.BadSamples the
// last shard also holds the deliberately broken samples listed in BadKinds,
// which exercise the preprocessing rejects path.
package synth
