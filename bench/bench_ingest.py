"""Ingest throughput and peak memory on a synthetic OakInk-Shape set.

    python -m bench.bench_ingest --grasps 2000 --num-points 2048
    afford report docs/results/ingest --update BENCHMARKS.md

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

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/ingest).")
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grasps < 1:
        parser.error(f"--grasps must be >= 1, got {args.grasps}")
    if args.root:  # the child process: ingest only
        print(json.dumps(run_ingest(args.root, args.num_points)))
        return
    from bench.record import bench_table, finish, load_text, started

    header = started("ingest", seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        written = build(root, args.grasps, args.seed)
        build_s = time.perf_counter() - start
        print(f"wrote {written} OakInk grasp files in {build_s:.1f} s")
        child = subprocess.run([sys.executable, "-m", "bench.bench_ingest", "--root", str(root),
                                "--num-points", str(args.num_points)], capture_output=True, text=True, check=False)
        if child.returncode != 0:
            sys.exit(f"ingest failed:\n{child.stderr}")
        r = json.loads(child.stdout.strip().splitlines()[-1])
    text = [f"{written} OakInk-Shape grasp folders (`hand_param.pkl` + `source.txt`), one object per category, "
            f"reusing refined grasps with small pose changes (writing them took {build_s:.1f} s, not counted). "
            f"Ingestion runs in its own process: the streaming loader with safe pickles and the mesh cache, MANO "
            f"vertices in batches, {args.num_points} surface points per sample, validation and a zstd Parquet "
            f"write. Its peak RSS includes the imported libraries (torch, pyarrow, trimesh); {load_text()}."]
    table = bench_table(["samples", "rows", "rejects", "seconds", "samples/s", "peak RSS MiB"],
                        [[r["inputs"], r["rows"], r["rejects"], r["seconds"], r["samples_per_s"], r["peak_rss_mib"]]],
                        ["d", "d", "d", ".2f", ".0f", ".0f"])
    finish(header, "ingest", "Ingest (synthetic OakInk-Shape)", text, [table], out=args.results)


if __name__ == "__main__":
    main()
