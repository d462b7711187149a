"""bench_tta_weights' settings: three weights >= 0 given as HAND,MAP,PENETRATION; bad entries refused by name; the
built-in list starts from the objective without the hand-centric term (the old baseline)."""

import pytest

from bench.bench_tta_weights import SETTINGS, parse_setting


def test_a_setting_is_three_weights():
    assert parse_setting("1,0.1,0.3") == ("hand 1, map 0.1, penetration 0.3", (1.0, 0.1, 0.3))
    for bad in ("1,2", "a,b,c", "1,-1,0"):
        with pytest.raises(ValueError, match=f"--weights '{bad}'"):
            parse_setting(bad)


def test_the_built_in_list_holds_the_old_objective():
    assert next(iter(SETTINGS.values())) == (0.0, 0.1, 0.1)
    assert all(len(w) == 3 and min(w) >= 0 for w in SETTINGS.values())


def test_a_missing_checkpoint_is_refused_by_path(tmp_path):
    """Before any model or table is read: the bench names the checkpoint it looked for and the command that makes
    it, exits 2 (argparse's usage error) and writes no results."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    missing = tmp_path / "heads4" / "grasp_model.pt"
    results = tmp_path / "results"
    run = subprocess.run([sys.executable, "-m", "bench.bench_tta_weights", "--data-root", str(tmp_path),
                          "--checkpoint", str(missing), "--results", str(results)],
                         cwd=repo, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    assert f"--checkpoint {missing} does not exist" in run.stderr
    assert "python -m bench.bench_generator" in run.stderr
    assert not results.exists()
