"""Affordance-map inference in chunks: each chunk of a target table's shards is mapped by one task (on any worker
that sees the data root) and committed on its own; the maps table is published once from the chunks.

A chunk's key covers the checkpoint, the text encoder, the chunk's input shards and the instructions of its
samples, so a re-run after a crash, or after an unrelated change, maps only what it has not mapped for the same
inputs. Memory: a worker holds one chunk's points and maps, never the table's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from schemas.affordance_map import AffordanceMapRow
from schemas.instruction import InstructionRow
from schemas.rows import Reject, Sample
from tasks.affordance.inference import TextBank, load_map_model
from tasks.affordance.maps import STAGE_VERSION, infer_rows, pair_inputs
from tasks.runtime.model_cache import cached
from tasks.store.chunks import ChunkStore, InputChunk, plan_chunks, rows_digest
from tasks.store.read import open_table
from tasks.store.side_rows import side_rows

STAGE = "affordance_maps"
_INSTRUCTION_COLUMNS = ["sample_id", "object_class", "affordance", "instruction"]


def plan_map_chunks(target_tables: Sequence[str | Path], instructions_table: str | Path, checkpoint_sha256: str,
                    text_encoder: str, shards_per_chunk: int) -> list[InputChunk]:
    """Chunks of the target tables, keyed by their shards, the model and the instructions of their samples."""
    data = open_table(instructions_table, InstructionRow).read(_INSTRUCTION_COLUMNS).to_pydict()
    by_id = {sid: (c, a, t) for sid, c, a, t in zip(*(data[k] for k in _INSTRUCTION_COLUMNS), strict=True)}
    params = {"stage_version": STAGE_VERSION, "checkpoint_sha256": checkpoint_sha256, "text_encoder": text_encoder}
    return plan_chunks(STAGE, target_tables, shards_per_chunk, params,
                       side_key=lambda ids: rows_digest(by_id.get(i) for i in ids))


def target_instructions(target_tables: Sequence[str | Path], instructions_table: str | Path) -> list[str]:
    """The distinct instructions of the target samples (the text bank's part beyond the training texts), in
    instructions-table order. Reads the key column of the targets and two columns of the instructions."""
    ids = pa.array([i for t in target_tables for i in open_table(t, Sample).read(["sample_id"]).column(0).to_pylist()],
                   type=pa.string())
    data = open_table(instructions_table, InstructionRow).read(["sample_id", "instruction"])
    picked = data.filter(pc.is_in(data.column("sample_id"), value_set=ids))
    return list(dict.fromkeys(picked.column("instruction").to_pylist()))


def map_chunk(chunk: InputChunk, store_root: str, checkpoint: str, checkpoint_sha256: str, bank: TextBank,
              instructions_table: str, device: str = "auto", batch_size: int = 32) -> dict:
    """Map one chunk's samples that have an instruction; commit rows and rejects; return the chunk's meta."""
    start = time.perf_counter()
    model = cached("affordance_maps", checkpoint, checkpoint_sha256, device, lambda: load_map_model(checkpoint, device),
                   lambda m: m.checkpoint_sha256)
    instructions = side_rows(instructions_table, InstructionRow, chunk.sample_ids)
    samples = open_table(chunk.table, Sample).iter_rows(shards=chunk.shards)
    rejects: list[Reject] = []
    inputs, unlabelled = pair_inputs(samples, instructions, chunk.table, rejects)
    rows, predict_seconds = infer_rows(model.model, inputs, bank, checkpoint_sha256, batch_size=batch_size)
    return ChunkStore(store_root, STAGE).commit(
        chunk.key, {"rows": (rows, AffordanceMapRow), "rejects": (rejects, Reject)},
        {"chunk": chunk.index, "table": chunk.table, "mapped": len(rows), "unlabelled": unlabelled,
         "rejected": len(rejects), "predict_seconds": predict_seconds, "seconds": time.perf_counter() - start})
