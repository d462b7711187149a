"""A run's report files: one JSON file per stage under `<data root>/reports/`, and the bundle `afford report`
writes beside the Markdown it renders (`run.json`: provenance plus every stage, the file the committed results
are checked against).

    reports/run.json            {"schema_version", "stage": "run", "figures": provenance + "finished"}
    reports/<stage>.json        {"schema_version", "stage", "figures": ...} or {..., "skipped": reason}
    reports/fit_mano.json       `afford fit-mano` on the run's AffordPose table (optional; its own provenance)
    reports/timings.json        wall time per stage (optional; tasks/runtime/stage_clock.py)

A benchmark that is not an annotate run (bench/bench_faults.py) writes one file instead, `result.json`:
{"schema_version", "kind", "provenance", "figures"}; `afford report` renders it the same way.

A reader refuses, naming the file, a run that did not finish, a missing or unreadable stage file, and files of
another schema version: a report is whole or not made.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT_SCHEMA_VERSION = 1
# The annotate flow's stages in the order the report shows them.
STAGES = ("ingest", "self_training", "instructions", "affordance", "annotated")
# Commands run on a finished run's tables (`afford fit-mano`): reported when present, with their own provenance.
EXTRA_STAGES = ("fit_mano", "timings")  # timings: wall time per stage (tasks/runtime/stage_clock.py)
BUNDLE = "run.json"
RESULT = "result.json"  # a benchmark's figures (kind: one of BENCH_KINDS)
# bench/bench_<kind>.py writes docs/results/<kind>/result.json; BENCHMARKS.md's block `<kind>` shows it. `faults` has
# its own renderer; the others are titled tables of measured rows (figures: "title", "text", "tables").
BENCH_KINDS = ("faults", "table_store", "ingest", "classifier", "cloud_prep", "affordance_inference", "llm",
               "grasp_train", "grasp_eval", "reannotate", "evaluate_grasp", "demo_budgets", "threads",
               "fresh_clone", "gpu_check", "prompts", "annotate_scale", "dask_workers", "generator",
               "generator_ae", "tta_weights", "sampling")


class ReportError(ValueError):
    """A run folder that cannot be reported on; the message names the file and what is wrong with it."""


def write_stage(reports: Path, stage: str, figures: dict[str, Any] | None = None, skipped: str | None = None) -> Path:
    """Write `reports/<stage>.json` (atomically: a reader never sees half a file). Give figures, or the reason the
    stage was skipped."""
    if stage != "run" and stage not in STAGES + EXTRA_STAGES:
        raise ValueError(f"stage {stage!r} is not one of run, {', '.join(STAGES + EXTRA_STAGES)}")
    if (figures is None) == (skipped is None):
        raise ValueError(f"stage {stage!r}: give figures or a skip reason, not both or neither")
    body: dict[str, Any] = {"schema_version": REPORT_SCHEMA_VERSION, "stage": stage}
    body |= {"figures": figures} if skipped is None else {"skipped": skipped}
    return _write_json(reports / f"{stage}.json", body)


def read_run(folder: Path) -> dict[str, Any]:
    """The bundle {"schema_version", "provenance", "stages": {stage: figures or {"skipped": reason}}} of a data
    root (from its reports/ folder) or of a results folder (its run.json)."""
    folder = Path(folder)
    if (folder / RESULT).is_file():
        return read_result(folder / RESULT)
    if (folder / "reports").is_dir():
        return _bundle_from_reports(folder / "reports")
    if (folder / BUNDLE).is_file():
        bundle = _read_json(folder / BUNDLE)
        _check_version(bundle, folder / BUNDLE)
        for key in ("provenance", "stages"):
            if key not in bundle:
                raise ReportError(f"{folder / BUNDLE}: no {key!r} field")
        missing = [s for s in STAGES if s not in bundle["stages"]]
        if missing:
            raise ReportError(f"{folder / BUNDLE}: no figures for stage(s) {', '.join(missing)}")
        return bundle
    raise ReportError(f"{folder}: neither a data root with a reports/ folder nor a results folder with {BUNDLE}")


def write_result(path: Path, kind: str, provenance: dict[str, Any], figures: dict[str, Any]) -> Path:
    """A benchmark's `result.json`: what produced it and its figures."""
    if kind not in BENCH_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(BENCH_KINDS)}")
    return _write_json(Path(path), {"schema_version": REPORT_SCHEMA_VERSION, "kind": kind,
                                    "provenance": provenance, "figures": figures})


def read_result(path: Path) -> dict[str, Any]:
    body = _read_json(path)
    _check_version(body, path)
    if body.get("kind") not in BENCH_KINDS:
        raise ReportError(f"{path}: kind {body.get('kind')!r} is not one of {', '.join(BENCH_KINDS)}")
    for key in ("provenance", "figures"):
        if key not in body:
            raise ReportError(f"{path}: no {key!r} field")
    return body


def write_bundle(bundle: dict[str, Any], folder: Path, name: str = BUNDLE) -> Path:
    return _write_json(Path(folder) / name, bundle)


def _bundle_from_reports(reports: Path) -> dict[str, Any]:
    run = _read_stage(reports, "run")
    if not run.get("finished"):
        raise ReportError(f"{reports / 'run.json'}: the run did not finish (finished is not true); report on a "
                          f"finished run")
    stages = {}
    for stage in STAGES:
        body = _read_stage_body(reports, stage)
        stages[stage] = {"skipped": body["skipped"]} if "skipped" in body else body["figures"]
    for stage in EXTRA_STAGES:
        if (reports / f"{stage}.json").is_file():
            stages[stage] = _read_stage(reports, stage)
    provenance = {k: v for k, v in run.items() if k != "finished"}
    return {"schema_version": REPORT_SCHEMA_VERSION, "provenance": provenance, "stages": stages}


def _read_stage(reports: Path, stage: str) -> dict[str, Any]:
    body = _read_stage_body(reports, stage)
    if "figures" not in body:
        raise ReportError(f"{reports / f'{stage}.json'}: no figures")
    return body["figures"]


def _read_stage_body(reports: Path, stage: str) -> dict[str, Any]:
    path = reports / f"{stage}.json"
    if not path.is_file():
        raise ReportError(f"{path} is missing: the run stopped before the {stage} stage, or older code made it")
    body = _read_json(path)
    _check_version(body, path)
    if body.get("stage") != stage or ("figures" not in body and "skipped" not in body):
        raise ReportError(f"{path}: not the {stage} stage's report (stage {body.get('stage')!r})")
    return body


def _check_version(body: dict[str, Any], path: Path) -> None:
    version = body.get("schema_version")
    if version != REPORT_SCHEMA_VERSION:
        raise ReportError(f"{path}: schema_version {version!r}; this code reads version {REPORT_SCHEMA_VERSION}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: unreadable JSON ({error})") from None
    if not isinstance(body, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(body).__name__}")
    return body


def _write_json(path: Path, body: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=False) + "\n")
    tmp.replace(path)
    return path
