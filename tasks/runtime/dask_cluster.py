"""A Dask cluster as separate processes on 127.0.0.1: one `dask scheduler` and N `dask worker`s, each in its own
session with its log and PID file under a state folder, stopped by the PIDs recorded.

The Dask fan-out test and the scale bench start one this way, as a user starts one on a machine (or one scheduler
and a worker per machine; README "Production"). Workers import the project from PROJECT_ROOT and must see the same
data root at the same path as the flow.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.runtime.prefect_server import PROJECT_ROOT, Started, _spawn, prefect_env, stop


@dataclass(frozen=True)
class DaskCluster:
    address: str
    processes: tuple[Started, ...]

    def stop(self) -> None:
        """Workers first, then the scheduler; only the PIDs this cluster started."""
        for process in reversed(self.processes):
            stop(process.pid)


def _wait_port(host: str, port: int, timeout_s: float, started: Started) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Dask scheduler did not listen on {host}:{port} within {timeout_s:.0f} s; "
                       f"see {started.log}")


def _workers_up(address: str, workers: int, timeout_s: float) -> None:
    from distributed import Client

    with Client(address, timeout=timeout_s) as client:
        client.wait_for_workers(workers, timeout=timeout_s)


def start_dask(state: Path, port: int, workers: int, threads_per_worker: int = 1, timeout_s: float = 120,
               **env: str) -> DaskCluster:
    """A scheduler on 127.0.0.1:port and `workers` worker processes of `threads_per_worker` threads; returns once
    every worker has joined. `env`: extra environment of the workers (e.g. AFFORD_TORCH_THREADS)."""
    if workers < 1 or threads_per_worker < 1:
        raise ValueError(f"workers and threads_per_worker must be >= 1, got {workers} and {threads_per_worker}")
    address = f"tcp://127.0.0.1:{port}"
    child_env = prefect_env(PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]),
                            **env)
    scheduler = _spawn("dask-scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                          "127.0.0.1", "--port", str(port), "--no-dashboard"], state, child_env)
    started = [scheduler]
    try:
        _wait_port("127.0.0.1", port, timeout_s, scheduler)
        for index in range(workers):
            started.append(_spawn(f"dask-worker-{index}", [
                sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads",
                str(threads_per_worker), "--host", "127.0.0.1", "--no-dashboard", "--no-nanny",
                "--local-directory", str(state / f"worker-{index}")], state, child_env, cwd=PROJECT_ROOT))
        _workers_up(address, workers, timeout_s)
    except BaseException:
        DaskCluster(address, tuple(started)).stop()
        raise
    return DaskCluster(address, tuple(started))
