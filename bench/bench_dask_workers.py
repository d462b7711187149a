"""The chunked stages of `annotate` on a Dask cluster of 1 and of 2 worker processes, side by side in one run.

    python -m bench.bench_dask_workers --samples 4000 --workers 1 2 --out /tmp/bench-dask
    afford report docs/results/dask_workers --update BENCHMARKS.md

The synthetic set of bench_annotate_scale (two categories, OakInk replicated to `--samples` perturbed copies) is
written once. For each worker count a `dask scheduler` and that many `dask worker` processes (1 thread each,
AFFORD_TORCH_THREADS=1) start on 127.0.0.1, and the whole `annotate` flow runs against them
(AFFORD_TASK_RUNNER=dask) into a fresh data root, so no chunk is reused. A stage's time is the union of the
intervals of its chunk task runs, as the Prefect API recorded them: ingest (`ingest-chunk`), cloud preparation
(`cloud-chunk`), pseudo-labelling (`label-chunk`), map inference (`map-chunk`) and the join (`join-chunk`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_annotate_scale import union_seconds
from bench.bench_reannotate import ANNOTATE, replicate_oakink

CHUNK_TASKS = {"ingest-chunk": "ingest", "cloud-chunk": "cloud preparation", "label-chunk": "pseudo-labelling",
               "map-chunk": "map inference", "join-chunk": "join"}
GOAL = 1.7  # labelling and map stages, 2 workers against 1


async def chunk_stage_seconds(flow_run_id) -> dict[str, float]:
    """{chunk task name: seconds during which at least one of its runs ran} over the run and its sub-flows."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        ids, frontier = [flow_run_id], [flow_run_id]
        while frontier:
            children = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=frontier)))
            frontier = [c.id for c in children]
            ids += frontier
        tasks, page = [], None
        while page is None or len(page) == 200:
            page = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)),
                                               limit=200, offset=len(tasks))
            tasks += page
    out = {}
    for name in CHUNK_TASKS:
        runs = [t for t in tasks if t.name.startswith(f"{name}-") and t.start_time and t.end_time]
        out[name] = union_seconds([(t.start_time.timestamp(), t.end_time.timestamp()) for t in runs])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000, help="OakInk grasps after replication")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-dask"))
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/dask_workers).")
    args = parser.parse_args()
    if args.samples < 16 or min(args.workers) < 1:
        parser.error(f"--samples must be >= 16 and --workers >= 1; got {args.samples}, {args.workers}")
    from bench.record import bench_table, finish, load_text, started

    header = started("dask_workers", seed=ANNOTATE["seed"])
    from flows.annotate import annotate
    from schemas.settings import AffordSettings
    from tasks.instruct.endpoint import free_port
    from tasks.runtime.dask_cluster import start_dask
    from tests.annotate_factories import synth_small

    shutil.rmtree(args.out, ignore_errors=True)
    began = time.perf_counter()
    datasets = synth_small(args.out)
    replicate_oakink(datasets, args.samples)
    build_s = time.perf_counter() - began
    settings = AffordSettings()
    shared = {"AFFORD_TORCH_THREADS": "1", "AFFORD_ROWS_PER_SHARD": str(settings.rows_per_shard),
              "AFFORD_CHUNK_SHARDS": str(settings.chunk_shards)}
    rows = []
    for workers in args.workers:
        cluster = start_dask(args.out / f"dask-{workers}", free_port(), workers, **shared)
        os.environ.update(shared | {"AFFORD_TASK_RUNNER": "dask", "AFFORD_DASK_ADDRESS": cluster.address})
        try:
            began = time.perf_counter()
            state = annotate(datasets_root=str(datasets), mano_root=str(datasets / "mano"),
                             data_root=str(args.out / f"data-{workers}"), truth_root=str(datasets),
                             return_state=True, **ANNOTATE)
            wall = time.perf_counter() - began
        finally:
            cluster.stop()
        stages = asyncio.run(chunk_stage_seconds(state.state_details.flow_run_id))
        rows.append({"workers": workers, "wall_s": round(wall, 1), **{k: round(v, 1) for k, v in stages.items()}})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]
    table = bench_table(["workers", "annotate wall s", *(f"{v} s" for v in CHUNK_TASKS.values())],
                        [[r["workers"], r["wall_s"], *(r[k] for k in CHUNK_TASKS)] for r in rows],
                        ["d", ".1f", *([".1f"] * len(CHUNK_TASKS))])
    speedups = bench_table(["workers", *(f"{v} speed-up" for v in CHUNK_TASKS.values())],
                           [[r["workers"], *(base[k] / r[k] if r[k] else None for k in CHUNK_TASKS)] for r in rows],
                           ["d", *([".2f"] * len(CHUNK_TASKS))],
                           notes=[f"Speed-up against {base['workers']} worker(s): that stage's seconds divided by "
                                  "these. Goal: 2 workers >= 1.7x for labelling (cloud preparation + "
                                  "pseudo-labelling) and map inference."])
    goals = []
    two = next((r for r in rows if r["workers"] == 2), None)
    if two is not None and base["workers"] == 1:
        labelling = (base["cloud-chunk"] + base["label-chunk"]) / (two["cloud-chunk"] + two["label-chunk"])
        maps = base["map-chunk"] / two["map-chunk"]
        goals.append(f"2 workers against 1: labelling {labelling:.2f}x, map inference {maps:.2f}x (goal >= {GOAL}x): "
                     + ("met" if min(labelling, maps) >= GOAL else "not met") + ".")
    text = [f"Two object categories; OakInk replicated to {args.samples} grasps beside the small AffordPose, GRAB and "
            f"HO-3D folders (written once in {build_s:.0f} s, not counted). Per worker count: a `dask scheduler` and "
            "`dask worker` processes (1 thread, AFFORD_TORCH_THREADS=1 each) on 127.0.0.1; the whole `annotate` flow "
            f"with AFFORD_TASK_RUNNER=dask into a fresh data root ({', '.join(f'{k} {v}' for k, v in ANNOTATE.items())}"
            f"; chunks of {settings.chunk_shards} shards of {settings.rows_per_shard} rows). A stage's seconds: the "
            f"union of its chunk task runs' intervals, from the Prefect API. {load_text()}.", *goals]
    finish(header, "dask_workers", "Chunked stages on 1 and 2 Dask worker processes", text, [table, speedups],
           out=args.results)


if __name__ == "__main__":
    main()
