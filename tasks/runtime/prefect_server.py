"""A local Prefect server and process worker as background processes, and deploying prefect.yaml to them.

`afford server up` / `down` and `afford deploy` are thin shells over these functions; the server integration test
uses them too. Each process runs in its own session with its output in a log file; its PID goes to a file under
the state folder (PREFECT_HOME), and `stop` signals only the PIDs it recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # where prefect.yaml and the flows live
DEFAULT_POOL = "afford-process"
DEFAULT_PORT = 4200


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    log: Path


def api_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/api"


def prefect_env(api: str | None = None, **extra: str) -> dict[str, str]:
    """This environment with the engine's Prefect defaults (state inside PREFECT_HOME, no analytics) and
    PREFECT_API_URL pointing at `api` when given."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1", **extra}
    env.setdefault("PREFECT_HOME", str(PROJECT_ROOT / ".prefect"))
    if api:
        env["PREFECT_API_URL"] = api
    return env


def _spawn(name: str, args: list[str], state: Path, env: dict[str, str], cwd: Path = PROJECT_ROOT) -> Started:
    state.mkdir(parents=True, exist_ok=True)
    log = state / f"{name}.log"
    with open(log, "ab") as handle:  # the child keeps its own handle
        process = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   cwd=cwd, start_new_session=True)
    (state / f"{name}.pid").write_text(f"{process.pid}\n")
    return Started(name, process.pid, log)


def wait_healthy(api: str, timeout_s: float = 120, pid: int | None = None) -> None:
    """Poll GET {api}/health until it answers 200; RuntimeError when `pid` exits first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not _alive(pid):
            raise RuntimeError(f"the Prefect server (pid {pid}) exited before {api} answered")
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise RuntimeError(f"{api}/health did not answer within {timeout_s:.0f} s")


def start_server(state: Path, port: int = DEFAULT_PORT, timeout_s: float = 120) -> Started:
    """`prefect server start` on 127.0.0.1:port (SQLite under PREFECT_HOME); returns once it is healthy."""
    api = api_url(port)
    started = _spawn("server", [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], state, prefect_env())
    try:
        wait_healthy(api, timeout_s, pid=started.pid)
    except RuntimeError as exc:
        stop(started.pid)
        raise RuntimeError(f"{exc}; see {started.log}") from None
    return started


def start_worker(state: Path, api: str, pool: str = DEFAULT_POOL) -> Started:
    """A process worker polling `pool` (created by `ensure_pool`); its flow runs use this Python."""
    return _spawn("worker", [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"],
                  state, prefect_env(api))


def run_prefect(args: list[str], api: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """`prefect <args>` in the project folder against `api`; RuntimeError with its output when it fails."""
    result = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=PROJECT_ROOT, env=prefect_env(api),
                            capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"prefect {' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def ensure_pool(api: str, pool: str = DEFAULT_POOL) -> bool:
    """Create the process work pool unless it exists; True when it was created."""
    try:
        run_prefect(["work-pool", "inspect", pool], api, timeout_s=120)
        return False
    except RuntimeError:
        run_prefect(["work-pool", "create", pool, "--type", "process"], api, timeout_s=120)
        return True


def deploy_all(api: str, pool: str = DEFAULT_POOL) -> str:
    """Create the pool if needed and `prefect deploy --all --no-prompt` from prefect.yaml; returns the output."""
    ensure_pool(api, pool)
    return run_prefect(["deploy", "--all", "--no-prompt"], api).stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but not ours
        return True
    try:  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop(pid: int, signals: int = 1, grace_s: float = 20) -> bool:
    """SIGTERM the process group of `pid` (`signals` times, a few seconds apart: a process worker needs two),
    then SIGKILL after `grace_s`; True when it had to be killed."""
    for i in range(signals):
        if not _alive(pid):
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        if i + 1 < signals:
            _wait_gone(pid, 3)
    if _wait_gone(pid, grace_s):
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    _wait_gone(pid, 5)
    return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def stop_recorded(state: Path, name: str, signals: int = 1) -> int | None:
    """Stop the process whose PID `start_*` recorded as <state>/<name>.pid; returns that PID (None: none)."""
    pid_file = state / f"{name}.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    stop(pid, signals=signals)
    pid_file.unlink(missing_ok=True)
    return pid
