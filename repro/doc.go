// Package repro runs kediff's toy-scale reproduction of ERNIE-ViLG 2.0's
// ablations (DESIGN.md 1.6, the paper's Fig. 5) on one small machine and
// writes REPRO.md with its tables and figures.
//
// One run, from nothing to the report:
//
//  1. data: synth training scenes heavy in two-object attribute binding
//     (Chinese and English captions), and held-out scenes whose captions are
//     the evaluation prompts and whose renders are the fidelity reference;
//  2. preprocessing (package pipelines) once per knowledge set: none,
//     textual (POS special tokens and keywords), object (detector loss masks
//     and appended labels), visual (object plus generated captions), all;
//  3. training (package train): a base model per knowledge set at equal
//     steps, a small sweep of w_a and w_l over the paper's grid on the full
//     knowledge set, and n = 1, 2, 4, 10 experts from the full base at equal
//     total fine-tuning samples (so equal inference cost: one expert runs
//     per step);
//  4. sampling (package sample) on the held-out prompts across guidance
//     scales and seeds;
//  5. evaluation: alignment by the GenEval-style checker (eval/geneval) and
//     fidelity as a Fréchet distance (eval/fid) on the features of an
//     independent network, the fixture detector's backbone, between the
//     generated images and the held-out renders, with 95% confidence
//     intervals from a bootstrap over prompts (alignment) and over images
//     (fidelity);
//  6. REPRO.md: the config, the commands, the tables, Pareto plots of
//     alignment against fidelity across guidance scales (like the paper's
//     Fig. 5), sample grids per variant, and a plain statement of which of
//     the paper's directions held here.
//
// Every stage keeps its outputs under the run folder and is skipped when a
// rerun finds them complete, so an interrupted run resumes where it
// stopped. Nothing is tuned on the held-out prompts.
package repro
