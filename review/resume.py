"""Hand a finished review back to the self-training flow: resume the flow run paused for that cycle.

The flow pauses with `pause_flow_run(wait_for_input=..., key=review_pause_key(cycle))` after writing the queue
(and its flow run id) to the review store; when the last item is decided the web app calls `resume_review_flow`,
which resumes that run with the `ReviewResult` as its input.

Safe to call more than once: Prefect refuses to resume a run that is not paused (then this returns False), and a
run paused for another cycle's review (a later cycle of the same self-training run) is left alone.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from schemas.review import ReviewResult

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

log = logging.getLogger(__name__)

PAUSE_KEY_PREFIX = "review-cycle-"


def review_pause_key(cycle: int) -> str:
    """The `key=` the flow passes to `pause_flow_run` while it waits for `cycle`'s review."""
    return f"{PAUSE_KEY_PREFIX}{cycle}"


def resume_review_flow(store_path: Path, cycle: int, result: ReviewResult, wait_for_pause_s: float = 30.0) -> bool:
    """Resume the flow run recorded for `cycle` in the store with `result` as its run input.

    A run that is still running is given `wait_for_pause_s` to reach its pause: a fast reviewer (the simulated
    one) can finish the queue before the flow has called `pause_flow_run`.
    Returns True when the run was resumed; False when no flow run is recorded, the run is not paused (already
    resumed, finished, or still running after the wait) or it is paused for another cycle. Errors reaching the
    Prefect API raise.
    """
    from review.store import ReviewStore

    if result.cycle != cycle:
        raise ValueError(f"result is for cycle {result.cycle}, not for cycle {cycle}")
    flow_run_id = ReviewStore(store_path).flow_run_id(cycle)
    if flow_run_id is None:
        log.info("review of cycle %d is complete; no flow run is recorded for it, so nothing to resume", cycle)
        return False
    return _resume(UUID(flow_run_id), cycle, result, wait_for_pause_s)


def prefect_api_url() -> str:
    """The Prefect API this process talks to (also the temporary server's URL in a plain local run), for a
    review server started as a subprocess so it resumes runs on the same API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url)


def is_paused_for_review(flow_run_id: str, cycle: int) -> bool:
    """True when the run is paused waiting for `cycle`'s review (its pause key is review_pause_key(cycle))."""
    state = _paused_state(UUID(flow_run_id), wait_s=0.0)
    return state is not None and state.is_paused() and state.state_details.pause_key == review_pause_key(cycle)


def _paused_state(flow_run_id: UUID, wait_s: float) -> State | None:
    """The run's state once it is paused or final, or after `wait_s` (polling twice a second)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(flow_run_id).state
            if state is None or state.is_paused() or state.is_final() or time.monotonic() >= deadline:
                return state
            time.sleep(0.5)


def _resume(flow_run_id: UUID, cycle: int, result: ReviewResult, wait_s: float) -> bool:
    # Prefect is imported here: the web app should start in a second, and most of its requests never resume.
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    state = _paused_state(flow_run_id, wait_s)
    pause_key = state.state_details.pause_key if state is not None and state.is_paused() else None
    if pause_key is None:
        log.info("flow run %s (cycle %d) is not paused (state %s); not resuming it", flow_run_id, cycle,
                 state.type.value if state is not None else None)
        return False
    if pause_key.startswith(PAUSE_KEY_PREFIX) and pause_key != review_pause_key(cycle):
        log.warning("flow run %s is paused for %r, not for cycle %d's review; not resuming it", flow_run_id,
                    pause_key, cycle)
        return False
    try:
        # _sync: the sync implementation even when called from inside an event loop (async_dispatch).
        resume_flow_run(flow_run_id, run_input=result.model_dump(mode="json"), _sync=True)
    except (NotPausedError, FlowPauseTimeout) as exc:  # resumed by someone else in between, or timed out
        log.info("flow run %s (cycle %d) could not be resumed: %s", flow_run_id, cycle, exc)
        return False
    log.info("resumed flow run %s with the review of cycle %d (%d items)", flow_run_id, cycle, len(result.items))
    return True
