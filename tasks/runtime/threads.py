"""torch's intra-op thread count for a run, from the `torch_threads` setting (AFFORD_TORCH_THREADS).

Measured (bench/bench_threads.py, BENCHMARKS.md block `threads`): on an idle machine every core helps; with other
processes busy on every core, more threads than free cores make a training step slower, not faster, because the
threads wait for each other. The default stays torch's (every core) rather than a guess from the load average:
the thread count changes the order of floating-point sums, so a load-dependent choice would make two runs of
one seed differ.
"""

from __future__ import annotations

from schemas.settings import AffordSettings


def apply_torch_threads(settings: AffordSettings) -> int:
    """Set torch's intra-op threads from the settings when given; the count in force afterwards."""
    import torch

    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)
        print(f"torch: {settings.torch_threads} intra-op threads (AFFORD_TORCH_THREADS)")
    return torch.get_num_threads()


_worker_threads_set = False


def worker_threads() -> None:
    """In a chunk task: the process's torch threads from its own AFFORD_TORCH_THREADS, once per process. A Dask
    worker has not run the flow's set-up, and torch's default there (every core per worker process) would
    oversubscribe the machine when it runs several workers."""
    global _worker_threads_set
    if not _worker_threads_set:
        _worker_threads_set = True
        if AffordSettings().torch_threads is not None:
            import torch

            torch.set_num_threads(AffordSettings().torch_threads)
