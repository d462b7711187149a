"""bench_prompts refuses what it cannot run before starting any endpoint, naming the option or the folder."""

import sys

import pytest

from bench import bench_prompts


@pytest.mark.parametrize(("argv", "message"), [
    (["--versions", "instruct-v9"], "--versions: prompt version 'instruct-v9' is not registered; registered: "
                                    "instruct-v2, instruct-v3"),
    (["--k", "0"], "--k must be >= 1, got 0"),
    (["--base-url", "http://127.0.0.1:1/v1"], "--base-url and --model go together"),
])
def test_bad_options_are_refused_by_name(tmp_path, monkeypatch, argv, message):
    monkeypatch.setattr(sys, "argv", ["bench_prompts", "--data-root", str(tmp_path), *argv])
    with pytest.raises(SystemExit, match=message):
        bench_prompts.main()


def test_a_data_root_without_a_demo_run_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["bench_prompts", "--data-root", str(tmp_path)])
    with pytest.raises(SystemExit, match=f"--data-root {tmp_path}: no tables/affordance_labels"):
        bench_prompts.main()


def test_fallback_reasons_are_grouped_without_the_quoted_answer():
    assert bench_prompts._reason_kind("invalid answer after repair: 'Lift the Eardrobe': does not name the "
                                      "earphone") == "does not name the earphone"
    assert bench_prompts._reason_kind("invalid answer after repair: 1 distinct valid instructions, 3 asked") == \
        "1 distinct valid instructions, 3 asked"
