"""Helpers for tests against a real Prefect server (`server` marker): run a deployment, list a deployment's runs."""

from __future__ import annotations


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
