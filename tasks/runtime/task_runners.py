"""The one place the task runner for fanned-out work is chosen: Prefect's thread pool, or Dask when configured."""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from schemas.settings import AffordSettings


def make_task_runner(settings: AffordSettings) -> TaskRunner:
    """`AFFORD_TASK_RUNNER=threads` (default): a thread pool of AFFORD_NUM_WORKERS; `dask`: prefect-dask's
    DaskTaskRunner on AFFORD_DASK_ADDRESS, or on a local cluster of AFFORD_NUM_WORKERS workers started per run."""
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=settings.num_workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ValueError("AFFORD_TASK_RUNNER=dask needs prefect-dask: pip install prefect-dask") from None
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": settings.num_workers, "processes": False,
                                          "dashboard_address": None})
