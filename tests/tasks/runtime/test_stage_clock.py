"""Wall time per stage: printed as it goes, merged into reports/timings.json, rendered by the report generator."""

from __future__ import annotations

import json

import pytest

from tasks.report.render import render_section, render_timings
from tasks.report.run_files import read_run, write_stage
from tasks.runtime.stage_clock import StageClock, human_seconds, record_stage_time
from tests.tasks.report.test_report import SMALL_RUN


def test_stages_are_printed_and_recorded_in_the_order_they_finish(tmp_path, capsys):
    clock = StageClock(tmp_path)
    with clock.stage("ingest"):
        pass
    clock.start("instruct")
    assert clock.done("instruct") >= 0
    out = capsys.readouterr().out
    assert "stage ingest ..." in out and "stage instruct done in" in out
    record_stage_time(tmp_path, "synthesise", 45.04)
    record_stage_time(tmp_path, "ingest", 3.0)  # a stage timed again replaces its earlier figure, at the end
    stages = json.loads((tmp_path / "timings.json").read_text())["figures"]["stages"]
    assert [(s["stage"], s["seconds"]) for s in stages][1:] == [("synthesise", 45.0), ("ingest", 3.0)]
    assert stages[0]["stage"] == "instruct"


def test_done_names_the_stage_started_last(tmp_path):
    clock = StageClock(tmp_path)
    clock.start("ingest")
    with pytest.raises(ValueError, match="'affordance' is done, but the stage started last is 'ingest'"):
        clock.done("affordance")


def test_human_seconds():
    assert (human_seconds(4.25), human_seconds(75), human_seconds(3600)) == ("4.2 s", "1m15s", "60m00s")


def test_timings_render_with_shares_and_a_total():
    text = render_timings({"stages": [{"stage": "ingest", "seconds": 30.0}, {"stage": "instruct", "seconds": 90.0}]})
    lines = text.splitlines()
    assert lines[0] == "## Wall time per stage"
    assert "| ingest | 30.0 | 25.0 |" in lines and "| all stages | 120.0 | 100.0 |" in lines


def test_the_timings_block_shows_a_run_with_timings_and_says_when_a_run_has_none(tmp_path):
    assert "This run has no Wall time per stage figures" in render_section("demo-timings", read_run(SMALL_RUN))
    write_stage(tmp_path, "timings", {"stages": [{"stage": "ingest", "seconds": 2.0}]})  # a stage name reports accept
    bundle = read_run(SMALL_RUN)
    bundle["stages"]["timings"] = json.loads((tmp_path / "timings.json").read_text())["figures"]
    assert "| ingest | 2.0 | 100.0 |" in render_section("demo-timings", bundle)
