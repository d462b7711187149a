"""Crash safety of grasp training: a training process killed with SIGKILL mid-run resumes from its last checkpoint
to the same final step count, with an unbroken loss history and a checkpoint that loads."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.grasp.model import read_checkpoint
from tasks.grasp.sample import load_grasp_generator
from tasks.grasp.train_log import read_log
from tests.grasp_factories import write_annotated

ROOT = Path(__file__).resolve().parents[3]
STEPS = 60  # per stage: 180 in all


def _command(table: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "tasks.grasp.train", "--annotated", str(table), "--out", str(out), "--preset",
            "tiny", "--steps", str(STEPS), "--checkpoint-every", "5", "--device", "cpu"]


def _env() -> dict[str, str]:
    return os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _step(path: Path) -> int:
    try:
        return int(read_checkpoint(path)["step"])
    except ValueError:
        return -1


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_step_count(tmp_path):
    write_annotated(tmp_path / "annotated", n=6)
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.pt"
    process = subprocess.Popen(_command(tmp_path / "annotated", out), cwd=ROOT, env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not (last.is_file() and _step(last) >= 20):
        assert process.poll() is None, process.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint at step >= 20 within 180 s"
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    killed_at = _step(last)
    assert 20 <= killed_at < 3 * STEPS  # killed mid-run, and what it left loads

    resumed = subprocess.run(_command(tmp_path / "annotated", out), cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resumed from step {killed_at}" in resumed.stdout
    assert _step(last) == 3 * STEPS
    steps = [int(r["step"]) for r in read_log(out / "train_log.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 3 * STEPS
    assert not list(last.parent.glob(".*.tmp"))
    assert load_grasp_generator(out / "grasp_model.pt", device="cpu").train_config.total_steps == 3 * STEPS
