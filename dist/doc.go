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
// Comm is the interface package train calls, and Connect picks one from
// the launcher and the device:
//
//   - Single: one process, no communication.
//   - DialTCP: torchrun's rendezvous at MASTER_ADDR:MASTER_PORT, no MPI
//     needed (under srun without those, Connect derives them from Slurm's
//     node list and job id).
//   - DialMPI: Open MPI, its libmpi.so.40 loaded at run time (mpi.go), so
//     the build needs no MPI and a machine without it only loses this one.
//   - DialNCCL: NCCL on GPU memory (nccl.go), libnccl.so.2 and the driver
//     loaded at run time, its unique id sent over MPI or TCP; Connect
//     returns it as a DeviceComm whose Host is that bootstrap Comm.
//
// Every collective has a timeout, and a rank that dies or stops makes the
// collective fail on every other rank with an error naming it (TCP) or
// makes mpirun end the job (MPI), so a job ends instead of hanging.
// bf16 buffers are summed in float32 (TCP, MPI: float32 on the wire) or by
// NCCL in bf16.
//
// # Reduction order
//
// DialTCP's all-reduce sums the ranks' buffers in rank order (0, then 1,
// then 2, ...) on rank 0 and sends that one result to every rank. The result
// is therefore bit-identical on every rank and from run to run with the same
// inputs. MPI's and NCCL's are the same on every rank in the order their
// algorithms choose. None is bit-identical to one process summing the same
// gradients in another order (float addition is not associative): a
// data-parallel run matches one process within float rounding (about 1e-7
// relative after a few steps in the tests), not bit for bit.
//
// # Not here yet
//
//   - A ring or tree all-reduce over TCP for large worlds (the star here
//     moves 2(N-1) buffers through rank 0), keeping a fixed order; MPI and
//     NCCL are the choice at scale.
//   - ZeRO-1 sharding of the optimizer state (needs reduce-scatter and
//     all-gather in Comm).
package dist
