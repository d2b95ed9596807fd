// Package bench holds kediff's benchmarks. Each one is a program under this
// folder (run through the Taskfile, "task bench-*") that measures a kediff
// path and, in the same run, the anchor it is judged against, and prints the
// ratio. Results are recorded in BENCHMARKS.md with the date and machine.
package bench
