"""The benches that compare settings on a trained model refuse a missing checkpoint before any model or table is
read: they name the checkpoint they looked for and the command that makes it, exit 2 (argparse's usage error) and
write no results."""

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("bench", ["bench.bench_tta_weights", "bench.bench_sampling"])
def test_a_missing_checkpoint_is_refused_by_path(tmp_path, bench):
    repo = Path(__file__).resolve().parents[2]
    missing = tmp_path / "heads4" / "grasp_model.pt"
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", bench, "--data-root", str(tmp_path), "--checkpoint", str(missing),
                          "--results", str(results)], cwd=repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert f"--checkpoint {missing} does not exist" in run.stderr
    assert "python -m bench.bench_generator" in run.stderr
    assert not results.exists()
