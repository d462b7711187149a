"""Helpers for tests against a real Prefect server (`server` marker): run a deployment, list a deployment's runs."""

from __future__ import annotations

from pathlib import Path


async def flow_runs(api: str, deployment: str) -> list:
    """Every flow run of the deployment named `deployment` on the server at `api`."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        async with get_client() as client:
            return await client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[deployment])))


def run_deployment_on(api: str, name: str, parameters: dict, timeout_s: float):
    """Run deployment `name` ("flow/deployment") on the server at `api` and wait for its final state."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        return run_deployment(name, parameters=parameters, timeout=timeout_s, poll_interval=3)


def wait_for_finished_runs(api: str, deployment: str, timeout_s: float = 600, poll_s: float = 3) -> list:
    """The runs of `deployment` in a final state, once there is at least one; AssertionError naming the deployment
    and the states seen when none finishes within `timeout_s` (a triggered run is created by an automation, so a
    test can only poll for it)."""
    import asyncio
    import time

    deadline, finished, runs = time.monotonic() + timeout_s, [], []
    while time.monotonic() < deadline and not finished:
        runs = asyncio.run(flow_runs(api, deployment))
        finished = [r for r in runs if r.state and r.state.is_final()]
        if not finished:
            time.sleep(poll_s)
    assert finished, f"no {deployment} run finished within {timeout_s:.0f} s (runs: {[r.state for r in runs]})"
    return finished


def annotate_small_on(api: str, data_root: Path, timeout_s: float = 900) -> tuple[Path, object]:
    """Synthesise the small datasets under `data_root` and run the `annotate/annotate` deployment on them with the
    test parameters; (the datasets folder, the finished flow run)."""
    from tests.annotate_factories import ANNOTATE_PARAMS, synth_small

    datasets = synth_small(data_root)
    run = run_deployment_on(api, "annotate/annotate", {
        "datasets_root": str(datasets), "mano_root": str(datasets / "mano"), "data_root": str(data_root),
        "truth_root": str(datasets), **ANNOTATE_PARAMS}, timeout_s=timeout_s)
    return datasets, run
