"""The chunked stages of annotate (classifier clouds and labels, affordance maps, the annotated join) on a few
hundred samples: cut into many chunks they give the same tables as one chunk per table, and a re-run over
committed chunks computes none of them again."""

from __future__ import annotations

import json

import pytest

from flows.annotate import annotate
from tasks.store.compare import table_differences
from tests.annotate_factories import ANNOTATE_PARAMS, synth_chunked

pytestmark = [pytest.mark.server, pytest.mark.slow, pytest.mark.timeout(1800)]


def _annotate(datasets, root, monkeypatch, rows_per_shard: int, chunk_shards: int) -> None:
    monkeypatch.setenv("AFFORD_ROWS_PER_SHARD", str(rows_per_shard))
    monkeypatch.setenv("AFFORD_CHUNK_SHARDS", str(chunk_shards))
    annotate(datasets_root=str(datasets), mano_root=str(datasets / "mano"), data_root=str(root),
             truth_root=str(datasets), **ANNOTATE_PARAMS)


def _committed(folder) -> list[dict]:
    return [json.loads((p / "meta.json").read_text()) for p in sorted(folder.iterdir()) if (p / "meta.json").is_file()]


def test_many_chunks_give_the_tables_of_one_chunk_per_table(prefect_harness, tmp_path, monkeypatch, caplog):
    datasets = synth_chunked(tmp_path)
    chunked, whole = tmp_path / "chunked", tmp_path / "whole"
    _annotate(datasets, chunked, monkeypatch, rows_per_shard=16, chunk_shards=1)
    maps = _committed(chunked / "affordance" / "chunks" / "affordance_maps")
    joins = _committed(chunked / "chunks" / "annotated_join")
    clouds = _committed(chunked / "chunks" / "classifier_clouds")
    assert min(len(maps), len(joins), len(clouds)) >= 8, (len(maps), len(joins), len(clouds))
    samples = sum(m["counts"]["samples"] for m in joins)
    assert samples >= 200 and sum(m["counts"]["joined"] for m in joins) > 0.9 * samples
    out = caplog.text  # the flows log their prints
    assert f"affordance_maps: chunk {len(maps)}/{len(maps)}" in out and "rows/s" in out

    _annotate(datasets, whole, monkeypatch, rows_per_shard=512, chunk_shards=100_000)
    assert len(_committed(whole / "chunks" / "annotated_join")) == 4  # one per dataset table
    assert table_differences(chunked / "tables", whole / "tables") == []

    # Again over the same inputs: every chunk of both stages is found committed, none computed.
    caplog.clear()
    _annotate(datasets, chunked, monkeypatch, rows_per_shard=16, chunk_shards=1)
    out = caplog.text
    assert f"annotated_join: {len(joins)} chunks" in out and f"{len(joins)} committed by an earlier run" in out
    assert table_differences(chunked / "tables", whole / "tables") == []
