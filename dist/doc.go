// Package dist lets N processes train one model: it tells a process its
// place in the job and gives it the collectives data-parallel training
// needs (all-reduce of gradients, broadcast of initial weights, barriers).
//
// # Ranks
//
// Discover reads the rank, world size and local rank from the environment
// the launcher set, so the same binary runs under any of them without
// flags. It understands, in this order of trust:
//
//   - Open MPI's mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE
//   - PMIx (srun --mpi=pmix, prterun): PMIX_RANK, with the size from
//     SLURM_NTASKS or OMPI_COMM_WORLD_SIZE
//   - Slurm's srun: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID
//   - PMI-1/2 (MPICH's Hydra, srun --mpi=pmi2): PMI_RANK, PMI_SIZE, and
//     MPI_LOCALRANKID, MPI_LOCALNRANKS where set
//   - torchrun and Kubernetes PyTorchJob/JobSet pods: RANK, WORLD_SIZE,
//     LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
//
// and without any of them the process is rank 0 of 1. Info.Device picks the
// GPU from the local rank. Note that sbatch sets SLURM_* in the batch
// script itself: run the training under srun, not directly in the script.
//
// # Communicators
//
// Comm is the interface the trainer will call; Single is the one-process
// Comm and DialTCP one over TCP with torchrun's rendezvous at
// MASTER_ADDR:MASTER_PORT, which needs no MPI. Every collective has a
// timeout, and a rank that dies or stops makes the collective fail on every
// other rank with an error naming it, so a job ends instead of hanging.
//
// # Reduction order
//
// DialTCP's all-reduce sums the ranks' buffers in rank order (0, then 1,
// then 2, ...) on rank 0 and sends that one result to every rank. The result
// is therefore bit-identical on every rank and from run to run with the same
// inputs. It is not bit-identical to one process summing the same gradients
// in another order: float addition is not associative.
//
// # Not here yet (issue 16)
//
//   - An MPI Comm (Open MPI loaded at run time or linked under a build tag)
//     and an NCCL Comm for --device cuda, its unique id sent over MPI or
//     over this package's TCP rendezvous; bf16 buffers with them.
//   - A ring or tree all-reduce for large worlds (the star here moves
//     2(N-1) buffers through rank 0), keeping a fixed order.
//   - Gradient buckets all-reduced while the backward pass still runs
//     (DDP's overlap), ZeRO-1 sharding of optimizer state.
//   - Wiring into train: the global batch split across ranks, weights
//     broadcast from rank 0, only rank 0 writing checkpoints and metrics.
package dist
