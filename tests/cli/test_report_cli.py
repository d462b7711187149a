"""`afford report`: renders a results folder, rewrites blocks, --check names a stale file, bad input refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
SMALL_RUN = Path(__file__).resolve().parents[1] / "tasks" / "report" / "data" / "small_run"


def test_report_writes_blocks_and_check_finds_a_stale_one(tmp_path):
    shutil.copytree(SMALL_RUN, tmp_path / "res")
    page = tmp_path / "page.md"
    page.write_text("<!-- report:demo-summary:begin -->\ntyped 99.9\n<!-- report:demo-summary:end -->\n")
    stale = runner.invoke(app, ["report", str(tmp_path / "res"), "--update", str(page), "--check"])
    assert stale.exit_code == 1 and "block 'demo-summary' differs" in stale.output
    assert "typed 99.9" in page.read_text()  # --check changes nothing
    done = runner.invoke(app, ["report", str(tmp_path / "res"), "--out", str(tmp_path / "out"), "--update", str(page)])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "out" / "run.md").read_text() == (SMALL_RUN / "run.md").read_text()
    fresh = runner.invoke(app, ["report", str(tmp_path / "res"), "--update", str(page), "--check"])
    assert fresh.exit_code == 0 and "up to date" in fresh.output


def test_report_refuses_bad_input_by_name(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and f"{tmp_path}: neither a data root" in result.output
    result = runner.invoke(app, ["report", str(SMALL_RUN), "--update", str(tmp_path / "nope.md")])
    assert result.exit_code == 2 and "nope.md: no such file" in result.output


def test_block_limits_the_rewrite_to_the_named_blocks(tmp_path):
    """A block drawn from another run (the MANO fits of an earlier demo) is left alone when a newer run fills the
    page's other blocks with --block."""
    page = tmp_path / "page.md"
    page.write_text("<!-- report:demo-summary:begin -->\nold\n<!-- report:demo-summary:end -->\n"
                    "<!-- report:demo-affordance:begin -->\nkept\n<!-- report:demo-affordance:end -->\n")
    done = runner.invoke(app, ["report", str(SMALL_RUN), "--update", str(page), "--block", "demo-summary"])
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert "old" not in text and "kept" in text
    checked = runner.invoke(app, ["report", str(SMALL_RUN), "--update", str(page), "--check", "--block",
                                  "demo-summary"])
    assert checked.exit_code == 0, checked.output
    wrong = runner.invoke(app, ["report", str(SMALL_RUN), "--update", str(page), "--block", "faults"])
    assert wrong.exit_code == 2 and "--block faults: not a block this run fills" in wrong.output
