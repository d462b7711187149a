"""Ingest throughput and peak memory on a synthetic OakInk-Shape set.

    python -m bench.bench_ingest --grasps 2000 --num-points 2048

Builds one object per category with refined grasps, then writes `--grasps` OakInk grasp files by reusing those
grasps with small random pose changes (the ingest cost is per file, not per distinct grasp). Ingestion runs in
its own process, so its peak RSS (ru_maxrss) is its own; the figure includes ~300 MiB of imported libraries.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def build(root: Path, grasps: int, seed: int) -> int:
    from models.mano import ManoLayer
    from models.mano_pickle import load_mano_pickle
    from models.synthetic_hand import write_synthetic_mano
    from tasks.ingest.common import GraspRecord
    from tasks.ingest.mano_frame import HandTemplate
    from tasks.ingest.oakink import write_oakink
    from tasks.synth.grasps import synthesize_grasps
    from tasks.synth.objects import CATEGORIES, make_object

    write_synthetic_mano(root / "mano")
    params = load_mano_pickle(root / "mano" / "MANO_RIGHT.pkl")
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(seed)
    base = []
    for category in CATEGORIES:
        obj = make_object(category, rng, f"bench{category.replace('-', '')}")
        for g in synthesize_grasps(obj, params, layer, per_part=1, rng=rng, steps=40):
            base.append(GraspRecord(category=obj.category, object_id=obj.object_id, object_vertices=obj.vertices,
                                    object_faces=obj.faces, intent="use", hand_pose=g.pose, hand_betas=g.betas,
                                    hand_trans=g.trans))
    records = [replace(base[i % len(base)],
                       hand_pose=base[i % len(base)].hand_pose + rng.normal(scale=0.01, size=48).astype(np.float32),
                       intent=("use", "hold", "liftup", "handover")[i % 4])
               for i in range(grasps)]
    write_oakink(root / "oakink", records, rng, HandTemplate.from_mano(params))
    return len(records)


def run_ingest(root: Path, num_points: int) -> dict:
    from tasks.ingest.pipeline import ingest

    start = time.perf_counter()
    counts = ingest("oakink", root / "oakink", root / "tables" / "oakink", root / "mano", num_points=num_points)
    seconds = time.perf_counter() - start
    return {"inputs": counts.inputs, "rows": counts.rows, "rejects": counts.rejects, "seconds": round(seconds, 2),
            "samples_per_s": round(counts.inputs / seconds, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grasps", type=int, default=2000)
    parser.add_argument("--num-points", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grasps < 1:
        parser.error(f"--grasps must be >= 1, got {args.grasps}")
    if args.root:  # the child process: ingest only
        print(json.dumps(run_ingest(args.root, args.num_points)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        written = build(root, args.grasps, args.seed)
        print(f"wrote {written} OakInk grasp files in {time.perf_counter() - start:.1f} s")
        child = subprocess.run([sys.executable, "-m", "bench.bench_ingest", "--root", str(root),
                                "--num-points", str(args.num_points)], capture_output=True, text=True, check=False)
        if child.returncode != 0:
            sys.exit(f"ingest failed:\n{child.stderr}")
        print(child.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
