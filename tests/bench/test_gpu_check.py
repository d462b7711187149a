"""bench/gpu_check.sh in its CPU dry-run mode: the one-command GPU check runs end to end, so it cannot rot
between the occasions a GPU is at hand."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_figure(tmp_path):
    out = tmp_path / "check"
    done = subprocess.run(["bash", "bench/gpu_check.sh", "--device", "cpu", "--tiny", "--out", str(out)], cwd=ROOT,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"gpu check done: {(out / 'result.json').absolute()}" in done.stdout
    result = json.loads((out / "result.json").read_text())
    assert result["kind"] == "gpu_check" and result["provenance"]["command"].startswith("python -m bench.gpu_check")
    grasp, inference = result["figures"]["tables"]
    measures = {row[0]: row[1] for row in grasp["rows"]}
    for stage in ("autoencoder", "diffusion", "dam"):
        assert measures[f"{stage}: steps/s"] > 0
    assert any(k.startswith("sampling, 1 grasp") and v > 0 for k, v in measures.items())
    assert measures["sampling, s per grasp when batched"] > 0
    assert any(k.startswith("peak memory") and v > 0 for k, v in measures.items())
    assert [row[0] for row in inference["rows"]] == ["Point-BERT classifier", "affordance-map model"]
    assert all(row[4] > 0 for row in inference["rows"])
    assert "GPU check" in (out / "result.md").read_text()


def test_gpu_mode_without_a_gpu_says_what_to_do(tmp_path):
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "--device cuda" in done.stderr and "sees no CUDA GPU" in done.stderr and "gpu_check.sh" in done.stderr


def test_a_bad_step_count_is_refused_by_name(tmp_path):
    done = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--device", "cpu", "--tiny", "--steps", "0",
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--steps must be >= 1, got 0" in done.stderr
    assert not (tmp_path / "out").exists()  # refused before any work
