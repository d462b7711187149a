"""A simulated reviewer for the demo and the tests: it reviews a queue through the same HTTP API as the page.

It knows the ground truth (synthetic datasets carry it) and answers from it, wrong on purpose with probability
`error_rate`, so the label-quality estimate downstream can be checked against a known error. The server helpers
start the real web app (`afford review serve`) in a subprocess, as a person would reach it.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from schemas.affordance import AFFORDANCES, normalise_affordance
from schemas.review import DECISIONS, DecisionIn, ItemState, QueueItem

ROOT = Path(__file__).resolve().parents[1]  # the repository root
TOKEN_ENV = "AFFORD_REVIEW_TOKEN"  # cli.review_cmd reads the token from here: argv is visible to every user


def choose_decision(item: QueueItem, truth: str, rng: random.Random, error_rate: float,
                    reviewer: str = "simulated") -> DecisionIn:
    """The decision on `item` of a reviewer who knows the true class `truth` and errs with probability error_rate.

    Right: accept a correct prediction, relabel a wrong one to the truth. Wrong: accept a wrong prediction, or
    reject / relabel-to-another-class a correct one (half each).
    """
    truth = normalise_affordance(truth)
    mistaken = rng.random() < error_rate  # drawn for every item, so one seed gives one sequence of mistakes
    if item.predicted == truth:
        if not mistaken:
            return DecisionIn(sample_id=item.sample_id, decision="accepted", reviewer=reviewer)
        if rng.random() < 0.5:
            return DecisionIn(sample_id=item.sample_id, decision="rejected", reviewer=reviewer)
        other = rng.choice([name for name in AFFORDANCES if name != truth])
        return DecisionIn(sample_id=item.sample_id, decision="relabelled", label=other, reviewer=reviewer)
    if mistaken:
        return DecisionIn(sample_id=item.sample_id, decision="accepted", reviewer=reviewer)
    return DecisionIn(sample_id=item.sample_id, decision="relabelled", label=truth, reviewer=reviewer)


def review_queue_over_http(base_url: str, cycle: int, truth: Mapping[str, str], error_rate: float = 0.0,
                           seed: int = 0, reviewer: str = "simulated", token: str | None = None,
                           timeout_s: float = 30) -> dict[str, int]:
    """Decide every item of `cycle` still open to `reviewer` on the server at `base_url` (GET next, POST
    decision, repeat). Items this reviewer decided are not served again, so overlap items that need a second
    reviewer, and disputed ones, stay open for someone else.

    truth: sample_id -> true affordance. timeout_s: per request. Returns the number of decisions of each kind.
    """
    if not 0.0 <= error_rate <= 1.0:
        raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
    rng = random.Random(seed)
    counts = dict.fromkeys(DECISIONS, 0)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s) as client:
        _checked(client.get(f"/api/cycles/{cycle}/progress"))  # an unknown cycle fails here, not as "no item"
        decided: set[str] = set()
        while (state := _next_pending(client, cycle, reviewer)) is not None:
            item = state.item
            if item.sample_id in decided:  # a decision that did not stick would loop forever
                raise RuntimeError(f"item {item.position} ({item.sample_id}) of cycle {cycle} is pending again "
                                   f"after it was decided")
            if item.sample_id not in truth:
                raise ValueError(f"no ground truth for sample_id {item.sample_id!r} (item {item.position} of cycle "
                                 f"{cycle})")
            decision = choose_decision(item, truth[item.sample_id], rng, error_rate, reviewer)
            _checked(client.post(f"/api/cycles/{cycle}/decisions", json=decision.model_dump(mode="json")))
            decided.add(item.sample_id)
            counts[decision.decision] += 1
    return counts


def review_until_complete(base_url: str, cycle: int, truth: Mapping[str, str], error_rate: float = 0.0,
                          seed: int = 0, token: str | None = None, max_reviewers: int = 5,
                          timeout_s: float = 30) -> dict[str, dict[str, int]]:
    """Simulated reviewers "simulated", "simulated-2", ... review `cycle` one after another until it is complete:
    the first decides every item, the second gives the overlap share its second opinion, later ones break ties.
    Each errs independently (seed + 1000 * i). Returns {reviewer: decisions of each kind}; RuntimeError when
    `max_reviewers` did not complete the queue."""
    done: dict[str, dict[str, int]] = {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for i in range(max_reviewers):
        name = "simulated" if i == 0 else f"simulated-{i + 1}"
        done[name] = review_queue_over_http(base_url, cycle, truth, error_rate, seed + 1000 * i, name, token,
                                            timeout_s)
        progress = _checked(httpx.get(f"{base_url}/api/cycles/{cycle}/progress", headers=headers,
                                      timeout=timeout_s)).json()
        if progress["decided"] == progress["total"]:
            return done
    left = progress["total"] - progress["decided"]
    raise RuntimeError(f"cycle {cycle}: {max_reviewers} simulated reviewers left {left} items open (pending or "
                       f"disputed)")


def _next_pending(client: httpx.Client, cycle: int, reviewer: str) -> ItemState | None:
    response = client.get(f"/api/cycles/{cycle}/next", params={"reviewer": reviewer})
    if response.status_code == 404:
        return None
    return ItemState.model_validate(_checked(response).json())


def _checked(response: httpx.Response) -> httpx.Response:
    """The response, or a RuntimeError naming the request and the server's explanation."""
    if response.is_success:
        return response
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text[:200]
    raise RuntimeError(f"{response.request.method} {response.request.url.path} -> {response.status_code}: {detail}")


# ------------------------------------------------------------------------------------------ a real server


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (another process could take it before we bind: rare on a test box)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start_review_server(store_path: Path, images_dir: Path, host: str = "127.0.0.1", port: int | None = None,
                        token: str | None = None, startup_timeout_s: float = 60.0, log_path: Path | None = None,
                        api_url: str | None = None) -> tuple[subprocess.Popen, str]:
    """Start `afford review serve` (as `python -m cli.review_cmd serve`) in a subprocess; wait for /healthz.

    port None: a free one. Output goes to `log_path` (default: review-server.log beside the store).
    api_url: the Prefect API the server resumes flow runs on (PREFECT_API_URL; default: the inherited setting),
    e.g. a flow's own temporary server. Returns (process, base_url). Stop it with `stop_review_server(process)`.
    """
    port = port or free_port(host)
    command = [sys.executable, "-m", "cli.review_cmd", "serve", "--store", str(store_path), "--images",
               str(images_dir), "--host", host, "--port", str(port)]
    env = dict(os.environ)
    env.pop(TOKEN_ENV, None)
    if token is not None:
        env[TOKEN_ENV] = token
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    log_path = Path(log_path) if log_path else Path(store_path).parent / "review-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    try:
        _wait_healthy(process, base_url, startup_timeout_s, log_path)
    except BaseException:
        stop_review_server(process)
        raise
    return process, base_url


def _wait_healthy(process: subprocess.Popen, base_url: str, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"review server exited with code {process.returncode} before answering; "
                               f"{log_path}:\n{tail}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise TimeoutError(f"review server at {base_url} did not answer /healthz within {timeout_s:.0f} s; see {log_path}")


def stop_review_server(process: subprocess.Popen, timeout_s: float = 10.0) -> int:
    """Stop a server this module started, by its PID: SIGTERM (uvicorn shuts down cleanly), SIGKILL after
    `timeout_s`. Returns the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
