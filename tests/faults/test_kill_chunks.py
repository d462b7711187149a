"""kill -9 of `afford annotate` in the middle of its chunked map stage: the re-run computes only the chunks that
were not committed, keeps the committed ones as they were, and ends with the tables of an uninterrupted run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tasks.store.compare import row_changes
from tests.annotate_factories import synth_chunked
from tests.faults.annotate_kill import kill_when, run_annotate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
SETTINGS = {"AFFORD_ROWS_PER_SHARD": "16", "AFFORD_CHUNK_SHARDS": "1"}  # ~190 OakInk samples: 12+ map chunks


def _committed(stage_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in stage_dir.glob("*/meta.json")}


def test_a_run_killed_mid_stage_recomputes_only_the_uncommitted_chunks(tmp_path):
    datasets = synth_chunked(tmp_path)
    reference = tmp_path / "reference" / "data"
    reference.parent.mkdir()
    rc, _ = run_annotate(datasets, reference, reference.parent / "log.txt", **SETTINGS)
    assert rc == 0, (reference.parent / "log.txt").read_text()[-3000:]
    total = len(_committed(reference / "affordance" / "chunks" / "affordance_maps"))
    assert total >= 8

    data = tmp_path / "killed" / "data"
    data.parent.mkdir()
    stage = data / "affordance" / "chunks" / "affordance_maps"
    log = data.parent / "log.txt"
    # Killed as soon as a third of the map chunks are committed, before the stage publishes its table.
    killed = kill_when(datasets, data, lambda: len(_committed(stage)) >= total // 3, log, **SETTINGS)
    assert killed, "the run finished before the kill moment"
    before = _committed(stage)
    assert 0 < len(before) < total and not (data / "tables" / "affordance_maps").exists()

    rc, _ = run_annotate(datasets, data, log, **SETTINGS)
    assert rc == 0, log.read_text()[-3000:]
    plans = re.findall(r"affordance_maps: (\d+) chunks of \d+ rows; (\d+) committed by an earlier run with the "
                       r"same inputs, (\d+) to compute", log.read_text())
    assert plans, log.read_text()[-3000:]
    assert [int(n) for n in plans[-1]] == [total, len(before), total - len(before)]  # the re-run's plan
    after = _committed(stage)
    assert {key: after[key] for key in before} == before  # the committed chunks were not computed again
    new_workers = {m["worker"] for key, m in after.items() if key not in before}
    assert len(new_workers) == 1 and not new_workers & {m["worker"] for m in before.values()}  # the re-run's process
    assert row_changes(reference / "tables", data / "tables") == {}
