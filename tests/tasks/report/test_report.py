"""Reports are rendered from a run's figures only: a stored small run renders to its committed Markdown, the
committed README/BENCHMARKS blocks match the committed demo run, and a run folder that is incomplete or of
another schema version is refused by file name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tasks.report.blocks import block_names, blocks, fill_blocks
from tasks.report.render import SECTIONS, render_bench_tables, render_fit_mano, render_run, render_section
from tasks.report.run_files import (
    BENCH_KINDS,
    REPORT_SCHEMA_VERSION,
    STAGES,
    ReportError,
    read_run,
    write_result,
    write_stage,
)

ROOT = Path(__file__).resolve().parents[3]
SMALL_RUN = Path(__file__).parent / "data" / "small_run"  # a reduced `afford demo`, bundled by `afford report`
DEMO_RUN = ROOT / "docs" / "results" / "demo"  # the run README's and BENCHMARKS' demo figures come from
# The blocks a benchmark's result fills: bench/bench_<kind>.py writes docs/results/<kind>/ (bench/record.py).
BLOCK_SOURCES = {kind: ROOT / "docs" / "results" / kind for kind in BENCH_KINDS}
# The MANO fits ran (for an hour) on an earlier demo run's AffordPose table (before per-object synthesis seeds).
BLOCK_SOURCES["demo-fit-mano"] = ROOT / "docs" / "results" / "demo_fit_mano"


def test_a_stored_small_run_renders_to_its_committed_markdown():
    assert render_run(read_run(SMALL_RUN)) == (SMALL_RUN / "run.md").read_text()


@pytest.mark.parametrize("document", ["README.md", "BENCHMARKS.md"])
def test_committed_blocks_are_what_the_committed_demo_run_renders_to(document):
    """The CI check: a block that names a run (its provenance line) must show that run's figures."""
    found = {name: body for name, body in blocks((ROOT / document).read_text()).items()
             if name in SECTIONS or name in BLOCK_SOURCES}
    assert found, f"{document} has no generated run block"
    for name, body in found.items():
        source = BLOCK_SOURCES.get(name, DEMO_RUN)
        bundle = read_run(source)
        assert body.rstrip() == render_section(name, bundle).rstrip(), f"{document}: block {name} is stale"
        name_md = "result.md" if "kind" in bundle else "run.md"
        assert (source / name_md).read_text() == render_run(bundle), f"{source / name_md} is stale"


def _data_root(tmp_path: Path) -> Path:
    """A data root whose reports/ folder holds the small run's figures, one file per stage."""
    bundle = read_run(SMALL_RUN)
    reports = tmp_path / "root" / "reports"
    write_stage(reports, "run", bundle["provenance"] | {"finished": True})
    for stage in STAGES:
        write_stage(reports, stage, bundle["stages"][stage])
    return reports.parent


def test_a_data_root_reads_back_as_the_bundle_it_was_written_from(tmp_path):
    assert read_run(_data_root(tmp_path)) == read_run(SMALL_RUN)


def test_a_missing_stage_file_is_named(tmp_path):
    root = _data_root(tmp_path)
    (root / "reports" / "affordance.json").unlink()
    with pytest.raises(ReportError, match=r"reports/affordance.json is missing"):
        read_run(root)


def test_an_unfinished_run_is_refused(tmp_path):
    root = _data_root(tmp_path)
    write_stage(root / "reports", "run", read_run(SMALL_RUN)["provenance"] | {"finished": False})
    with pytest.raises(ReportError, match=r"run.json: the run did not finish"):
        read_run(root)


def test_another_schema_version_is_refused_by_file(tmp_path):
    root = _data_root(tmp_path)
    path = root / "reports" / "instructions.json"
    body = json.loads(path.read_text()) | {"schema_version": REPORT_SCHEMA_VERSION + 1}
    path.write_text(json.dumps(body))
    with pytest.raises(ReportError, match=rf"instructions.json: schema_version {REPORT_SCHEMA_VERSION + 1}"):
        read_run(root)
    path.write_text("{not json")
    with pytest.raises(ReportError, match=r"instructions.json: unreadable JSON"):
        read_run(root)


def test_a_bundle_without_a_stage_is_refused(tmp_path):
    shutil.copytree(SMALL_RUN, tmp_path / "res")
    body = json.loads((tmp_path / "res" / "run.json").read_text())
    del body["stages"]["self_training"]
    (tmp_path / "res" / "run.json").write_text(json.dumps(body))
    with pytest.raises(ReportError, match=r"no figures for stage\(s\) self_training"):
        read_run(tmp_path / "res")
    with pytest.raises(ReportError, match=r"neither a data root"):
        read_run(tmp_path)


def test_a_skipped_stage_renders_its_reason(tmp_path):
    root = _data_root(tmp_path)
    write_stage(root / "reports", "affordance", skipped="no training items: no part labels")
    assert "## Affordance maps skipped\n\nno training items: no part labels" in render_run(read_run(root))
    with pytest.raises(ValueError, match="not both or neither"):
        write_stage(root / "reports", "affordance")


def test_fill_blocks_rewrites_only_its_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("intro 1.23\n<!-- report:demo-summary:begin (generated) -->\nold 9.99\n"
                    "<!-- report:demo-summary:end -->\n<!-- report:other:begin -->\nkept\n<!-- report:other:end -->\n")
    bundle = read_run(SMALL_RUN)
    assert fill_blocks(page, lambda name: render_section(name, bundle)) == ["demo-summary"]
    text = page.read_text()
    assert text.startswith("intro 1.23\n") and "old 9.99" not in text and "kept" in text
    assert blocks(text)["demo-summary"].rstrip() == render_section("demo-summary", bundle).rstrip()
    assert block_names(text) == ["demo-summary", "other"]


def test_the_summary_holds_the_figures_a_reader_looks_for():
    bundle = read_run(SMALL_RUN)
    summary = render_section("demo-summary", bundle)
    ingest = bundle["stages"]["ingest"]["datasets"]
    total = sum(d["inputs"] for d in ingest)
    assert summary.startswith("Run: `afford demo")
    assert f"{total} inputs = {sum(d['rows'] for d in ingest)} rows" in summary
    accuracy = bundle["stages"]["self_training"]["classifier"]["split_accuracy"]["test"]
    assert f"| test | {100 * accuracy:.2f} |" in summary
    assert "#### Self-training" in summary  # headings sit two levels below the document's own


def test_fit_mano_figures_are_reported_when_present_and_named_when_missing(tmp_path):
    """`afford fit-mano` runs after a run, so its stage is optional: present, it renders with its own provenance;
    absent, the BENCHMARKS block says the figures are missing instead of failing the whole report."""
    root = _data_root(tmp_path)
    bundle = read_run(root)
    assert "fit_mano" not in bundle["stages"]
    assert "This run has no MANO fits" in render_section("demo-fit-mano", bundle)
    quantiles = {"min": 1.0, "median": 2.5, "p90": 4.0, "max": 6.25}
    provenance = bundle["provenance"] | {"command": "afford fit-mano afford-data/tables/affordpose", "seed": None}
    write_stage(root / "reports", "fit_mano", {
        "provenance": provenance, "hands": 8, "skipped_mano": 0, "steps": 300, "seconds": 40.0,
        "mean_mm": quantiles, "max_mm": quantiles, "contact_iou": quantiles, "usable_mm": 5.0, "usable": 7})
    bundle = read_run(root)
    section = render_section("demo-fit-mano", bundle)
    assert "`afford fit-mano afford-data/tables/affordpose` (no random draws)" in section
    assert "| mean error per hand (mm) | 1.00 | 2.50 | 4.00 | 6.25 |" in section
    assert "7 of 8 fits have a mean error at or under 5 mm" in section and "(5.0 s per hand)" in section
    assert render_run(bundle).endswith(render_fit_mano(bundle["stages"]["fit_mano"]) + "\n")
    with pytest.raises(ValueError, match="stage 'fit_manos' is not one of"):
        write_stage(root / "reports", "fit_manos", {})


def test_a_benchmark_table_renders_raw_cells_by_column_format(tmp_path):
    """Benches store numbers as numbers; the Markdown formats them per column, and None is an empty cell."""
    figures = {"title": "Ingest", "text": ["2 samples."],
               "tables": [{"heading": None, "columns": ["samples", "seconds", "note"], "formats": ["d", ".2f", ""],
                           "rows": [[2000, 3.14159, None], [10, 0.5, "warm"]], "notes": ["Done."]}]}
    assert render_bench_tables(figures) == "\n\n".join([
        "## Ingest", "2 samples.",
        "| samples | seconds | note |\n| --- | --- | --- |\n| 2000 | 3.14 |  |\n| 10 | 0.50 | warm |", "Done."])
    provenance = read_run(SMALL_RUN)["provenance"] | {"command": "python -m bench.bench_ingest", "seed": 0}
    path = write_result(tmp_path / "ingest" / "result.json", "ingest", provenance, figures)
    section = render_section("ingest", read_run(path.parent))
    assert section.startswith("Run: `python -m bench.bench_ingest` (seed 0)") and "#### Ingest" in section
    assert render_section("table_store", read_run(path.parent)) is None  # a result fills only its own block
