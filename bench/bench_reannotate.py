"""Full annotate run vs incremental re-annotation after 1 % of the files change, and the share of the full run's
wall time that is orchestration rather than task work.

    python -m bench.bench_reannotate --samples 2000 --out /tmp/bench-reannotate
    afford report docs/results/reannotate --update BENCHMARKS.md

A small synthetic set (two categories) is written once; its OakInk grasps are then replicated (each copy with
its finger pose bent by up to 4e-4 rad, so every file has its own bytes and sample) until OakInk holds
`--samples` grasps.
The full `annotate` flow runs on the ephemeral API with the sizes below (template instructions, short training:
this measures the data path, not model quality). Then 1 % of the OakInk files are edited and `reannotate` runs.

Orchestration share = 1 - (sum of task-run times) / (flow wall time), from the task runs the Prefect API recorded
for the run and its sub-flows. Time in flow bodies between tasks counts as orchestration here, so the share is an
upper bound on what Prefect itself costs. Writes docs/results/reannotate/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ANNOTATE = {"seed": 0, "reviewer": "simulated", "epochs": 5, "max_cycles": 1, "queue_size": 100,
            "instructions": "template", "affordance_steps": 100, "affordance_preset": "tiny"}


def replicate_oakink(datasets: Path, samples: int, seed: int = 0) -> int:
    """Copy OakInk grasp folders (finger pose bent by up to 4e-4 rad) until there are `samples` of them."""
    from tests.annotate_factories import oakink_params, perturb_oakink

    originals = oakink_params(datasets)
    rng = np.random.default_rng(seed)
    count, copy = len(originals), 0
    while count < samples:
        source = originals[copy % len(originals)]
        target = source.parent.with_name(f"{source.parent.name}r{copy:05d}")
        shutil.copytree(source.parent, target)
        # below the simulated reviewer's 1e-3 rad tolerance, so each copy keeps its synthetic ground truth
        perturb_oakink(target / source.name, float(rng.uniform(1e-5, 4e-4)))
        copy, count = copy + 1, count + 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="OakInk grasps after replication")
    parser.add_argument("--changed", type=float, default=0.01, help="share of OakInk files edited")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-reannotate"))
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/reannotate).")
    args = parser.parse_args()
    from bench.bench_annotate_scale import task_intervals, union_seconds
    from bench.record import bench_table, finish, load_text, started

    header = started("reannotate", seed=ANNOTATE["seed"])
    from flows.annotate import annotate
    from flows.reannotate import reannotate
    from tasks.store.read import open_table
    from tests.annotate_factories import oakink_params, perturb_oakink, synth_small

    shutil.rmtree(args.out, ignore_errors=True)
    began = time.perf_counter()
    datasets = synth_small(args.out)
    oakink = replicate_oakink(datasets, args.samples)
    synth_s = time.perf_counter() - began
    common = {"datasets_root": str(datasets), "data_root": str(args.out)}
    began = time.perf_counter()
    state = annotate(mano_root=str(datasets / "mano"), truth_root=str(datasets), return_state=True,
                     **common, **ANNOTATE)
    full_s = time.perf_counter() - began
    # Chunked stages run tasks side by side: the time some task ran is the union of their intervals, not the sum
    intervals, task_runs, run_s = asyncio.run(task_intervals(state.state_details.flow_run_id))
    tasks_s = union_seconds(intervals)
    files = oakink_params(datasets)
    edited = files[:: max(1, round(1 / args.changed))][: max(1, round(args.changed * len(files)))]
    for path in edited:
        perturb_oakink(path, 3e-4)
    began = time.perf_counter()
    reannotate(dataset="oakink", **common)
    re_s = time.perf_counter() - began
    [report] = [json.loads(p.read_text()) for p in (args.out / "reannotate").glob("*-oakink.json")]
    samples = sum(open_table(args.out / "tables" / d).num_rows for d in ("affordpose", "oakink", "grab", "ho3d"))
    r = {
        "oakink_samples": oakink, "samples": samples, "annotated_rows": open_table(args.out / "tables" /
                                                                                   "annotated").num_rows,
        "synth_s": round(synth_s, 1), "full_annotate_wall_s": round(full_s, 1), "full_run_time_s": round(run_s, 1),
        "task_runs": task_runs, "task_seconds": round(tasks_s, 1),
        "orchestration_share": round(1 - tasks_s / run_s, 3),
        "edited_files": len(edited), "reannotate_wall_s": round(re_s, 1), "recomputed": len(report["changed"]),
        "unchanged": report["unchanged"], "speedup": round(full_s / re_s, 1)}
    print(json.dumps(r, indent=1))
    settings = ", ".join(f"{k} {v}" for k, v in ANNOTATE.items())
    text = [f"Two object categories; OakInk replicated to {r['oakink_samples']} grasps (each copy with its own "
            f"bytes) beside the small AffordPose, GRAB and HO-3D folders: {r['samples']} samples, "
            f"{r['annotated_rows']} rows in `annotated`. The full run is the whole `annotate` flow on the ephemeral "
            f"API ({settings}); then {r['edited_files']} OakInk files ({100 * args.changed:g} %) are edited and "
            f"`reannotate` runs on OakInk. Writing the datasets took {r['synth_s']:.0f} s (not counted); "
            f"{load_text()}.",
            f"Orchestration share: the flow run's own time was {r['full_run_time_s']:.1f} s of the "
            f"{r['full_annotate_wall_s']:.1f} s wall; at least one of its {r['task_runs']} task runs was running "
            f"during {r['task_seconds']:.1f} s of it (the union of their intervals: chunk tasks overlap), so "
            f"{100 * r['orchestration_share']:.1f} % of the flow run's time was outside any task (an upper bound on "
            f"what Prefect costs: it also holds work done in flow bodies between tasks)."]
    table = bench_table(["run", "wall s", "samples recomputed", "samples unchanged"],
                        [["full `annotate`", r["full_annotate_wall_s"], r["samples"], None],
                         ["`reannotate oakink` after the edit", r["reannotate_wall_s"], r["recomputed"],
                          r["unchanged"]]], ["", ".1f", "d", "d"],
                        notes=[f"Re-annotation took 1/{r['speedup']:g} of the full run."])
    finish(header, "reannotate", "Annotate DAG: full run vs incremental re-annotation, orchestration share", text,
           [table], out=args.results)


if __name__ == "__main__":
    main()
