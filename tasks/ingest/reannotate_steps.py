"""The steps of an incremental re-annotation, each limited to the samples that changed: what the full run used
(points, seed, generator), then labels with the current classifier, instructions from the cache, maps with the
current map model, and the annotated join; each upserts its table by sample_id and drops removed samples."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from models.text_encoder import TextEncoder
from schemas.affordance_map import AffordanceMapRow
from schemas.annotated import AnnotatedRow
from schemas.data_root import DataRoot
from schemas.instruction import InstructionRow
from schemas.manifest import Lineage
from schemas.rows import AffordanceLabel, Reject, Sample
from schemas.settings import AffordSettings
from tasks.affordance.inference import TextBank, load_map_model
from tasks.affordance.maps import InferInput, infer_rows
from tasks.ingest.delta import (
    STAGE_VERSION,
    SampleDelta,
    load_classifier_state,
    replace_rejects,
    unreviewed_labels,
    upsert,
)
from tasks.instruct.cache import InstructionCache
from tasks.instruct.stage import instruct_samples
from tasks.pseudo_label.classifier_data import clouds_from_rows
from tasks.pseudo_label.classifier_model import load_trained, predict_logits
from tasks.pseudo_label.labelling import label_rows
from tasks.store.annotated_join import SideTables, join_ids
from tasks.store.read import open_table, table_exists
from tasks.store.side_rows import KeyedShards, side_rows


def ingested_with(table: Path, num_points: int | None, seed: int | None) -> tuple[int, int]:
    """The given values, else those the table was last ingested with (so changed samples match the rest),
    else the defaults 2048 and 0."""
    params = open_table(table).manifest.lineage.params if table_exists(table) else {}
    return (num_points if num_points is not None else int(params.get("num_points", 2048)),
            seed if seed is not None else int(params.get("seed", 0)))


def instructed_with(table: Path, generator: str | None, k: int | None) -> tuple[str, int]:
    """The given generator and k, else those that last wrote the instructions table, else auto and 3."""
    params = open_table(table).manifest.lineage.params if table_exists(table) else {}
    return (generator or str(params.get("generator", "auto")), k if k is not None else int(params.get("k", 3)))


def changed_samples(table: Path, ids: set[str]) -> list[Sample]:
    """The rows of `ids`, in table order, read from the shards holding them only (ingest wrote the changed rows
    into new shards: the files that held their old rows list those as deleted, and are not read)."""
    if not ids:
        return []
    return list(side_rows(table, Sample, ids, shards=KeyedShards(table).shards_for(ids)).values())


@task(name="label-changed", cache_policy=NONE)
def label_task(samples: list[Sample], removed: list[str], data_root: Path, lineage: Lineage) -> int:
    """Label changed target samples with the last full run's classifier and rule -> affordance_labels."""
    layout = DataRoot(data_root)
    labels = []
    if samples:
        state_file = DataRoot(data_root).current("classifier")
        state = load_classifier_state(state_file)
        result = load_trained(state.checkpoint)
        if result.checkpoint_sha256 != state.checkpoint_sha256:
            raise ValueError(f"{state.checkpoint}: sha256 {result.checkpoint_sha256[:12]} is not the "
                             f"{state.checkpoint_sha256[:12]} recorded in {state_file}")
        rejects: list[Reject] = []
        clouds = clouds_from_rows(samples, result.model_config.num_points, on_error=lambda row, exc: rejects.append(
            Reject(sample_id=row.sample_id, stage_version=STAGE_VERSION, stage="pseudo_label",
                   source=str(layout.tables), reason=str(exc), dataset=row.dataset)))
        if len(clouds):
            pseudo = label_rows(clouds, [s.rsplit("-", 1)[0] for s in clouds.sample_ids],
                                predict_logits(result.model, clouds.points), state.rule, state.class_stats(), state.k,
                                state.cycle, state.checkpoint_sha256)
            labels = unreviewed_labels(pseudo, state)
        ids = {s.sample_id for s in samples}
        replace_rejects(layout.rejects, "pseudo_label", rejects, lineage, lambda sid, ds: sid in ids)
    return upsert(layout.affordance_labels, labels, AffordanceLabel, removed, lineage)


@task(name="instruct-changed", cache_policy=NONE)
def instruct_task(samples: list[Sample], removed: list[str], data_root: Path, generator: str, k: int,
                  lineage: Lineage) -> dict[str, int]:
    """Instructions for the changed labelled samples; cached keys cost no call (the endpoint starts only for a
    key the cache lacks)."""
    from tasks.instruct.choice import chosen_generator

    layout = DataRoot(data_root)
    # side_rows: only the changed samples' rows are validated (an empty dict when the table does not exist)
    labels = {i: r.affordance for i, r in side_rows(layout.affordance_labels, AffordanceLabel,
                                                    [s.sample_id for s in samples]).items()}
    inputs = [(s.sample_id, s.dataset, s.object_category, s.affordance or labels[s.sample_id], None)
              for s in samples if s.affordance or s.sample_id in labels]
    rows, counts = [], None
    if inputs:
        settings = AffordSettings(data_root=data_root)  # the same cache the full run's instruct stage filled
        with chosen_generator(generator, settings) as chosen:
            cache = InstructionCache(DataRoot(settings.data_root).instruction_cache)
            rows, counts = instruct_samples(inputs, chosen, cache, k=k)
    written = upsert(layout.instructions, rows, InstructionRow, removed, lineage)
    return {"rows": written, "keys": counts.keys if counts else 0, "cache_hits": counts.cache_hits if counts else 0,
            "endpoint_calls": counts.endpoint_calls if counts else 0}


@task(name="map-changed", cache_policy=NONE)
def map_task(samples: list[Sample], removed: list[str], data_root: Path, lineage: Lineage) -> int:
    """Affordance maps for the changed target samples with the last full run's checkpoint."""
    layout = DataRoot(data_root)
    instructions = side_rows(layout.instructions, InstructionRow, [s.sample_id for s in samples])
    inputs = [InferInput(s.sample_id, s.dataset, instructions[s.sample_id].object_class,
                         instructions[s.sample_id].affordance, instructions[s.sample_id].instruction,
                         s.object_points) for s in samples if s.sample_id in instructions]
    rows = []
    if inputs:
        current = DataRoot(data_root).current("affordance")
        if not current.is_file():
            raise ValueError(f"{current}: no affordance-map model recorded; run the full annotate flow first")
        model = load_map_model(json.loads(current.read_text())["checkpoint"])
        bank = TextBank([i.instruction for i in inputs], TextEncoder())
        rows, _ = infer_rows(model.model, inputs, bank, model.checkpoint_sha256)
    return upsert(layout.affordance_maps, rows, AffordanceMapRow, removed, lineage)


@task(name="join-changed", cache_policy=NONE)
def join_task(samples: list[Sample], removed: list[str], data_root: Path, lineage: Lineage) -> int:
    layout = DataRoot(data_root)
    tables = SideTables(labels=layout.affordance_labels, instructions=layout.instructions,
                        maps=layout.affordance_maps, fits=layout.mano_fits)
    rejects: list[Reject] = []
    maps_shards = KeyedShards(layout.affordance_maps).shards_for([s.sample_id for s in samples])
    rows, _ = join_ids(samples, tables, rejects, {"maps": maps_shards})  # the changed ids' side rows only
    ids = {s.sample_id for s in samples} | set(removed)
    replace_rejects(layout.rejects, "annotate", rejects, lineage, lambda sid, ds: sid in ids)
    # A changed sample that no longer joins (e.g. it lost its label) must not keep its old annotated row.
    stale = removed + [s.sample_id for s in samples if s.sample_id not in {r.sample_id for r in rows}]
    return upsert(layout.annotated, rows, AnnotatedRow, stale, lineage)


def reannotate_report(layout: DataRoot, dataset: str, event_id: str | None, delta: SampleDelta, labelled: int,
                      instructed: dict[str, int], mapped: int, joined: int, seconds: float) -> str:
    """Write the pass's JSON report under the data root's reannotate/ folder and return its Markdown summary."""
    report = {"dataset": dataset, "event_id": event_id, "finished_at": datetime.now(UTC).isoformat(),
              "inputs": delta.inputs, "unchanged": delta.unchanged, "changed": delta.changed,
              "removed": delta.removed, "rejects": delta.rejects, "labelled": labelled, "instructions": instructed,
              "mapped": mapped, "annotated": joined, "seconds": round(seconds, 3)}
    out = layout.reannotate_reports
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{report['finished_at'].replace(':', '')}-{dataset}.json").write_text(json.dumps(report, indent=1))
    markdown = "\n".join([
        f"## Re-annotation of {dataset}", "", f"- {delta.summary()}",
        f"- labels: {labelled} changed target samples labelled (origin `unreviewed` or `low_confidence`)",
        f"- instructions: {instructed['rows']} rows, {instructed['keys']} keys, {instructed['cache_hits']} from "
        f"the cache, {instructed['endpoint_calls']} endpoint calls",
        f"- affordance maps: {mapped}; annotated rows rewritten: {joined}; removed everywhere: {len(delta.removed)}",
        f"- {report['seconds']:.1f} s" + (f"; event `{event_id}`" if event_id else "")])
    return markdown
