"""Classifier cloud preparation: one sample at a time (`joint_cloud`) against batched (`joint_clouds`).

    python -m bench.bench_cloud_prep --preset cpu paper --samples 2000
    afford report docs/results/cloud_prep --update BENCHMARKS.md

Both paths farthest-point sample the same random hands (778 vertices) and objects (2048 points, the size ingest
writes), stored as float32 like the sample table, to the preset's point count; the bench checks that they give
the same clouds before it reports a figure. Each path runs with torch's thread count set to 1 and to 2: the
batched path runs its FPS chunks on that many threads, the per-sample path (numpy) ignores it. A second table
times the batched path on fewer samples at several chunk sizes (`FPS_BATCH` is chosen from it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HAND_VERTS, OBJECT_POINTS = 778, 2048  # MANO's vertex count; ingest's default object points
THREADS = (1, 2)


def make_inputs(samples: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`samples` hands (778, 3) beside objects (2048, 3), float32 metres."""
    rng = np.random.default_rng(seed)
    hands = rng.normal(scale=0.03, size=(samples, HAND_VERTS, 3)) + np.array([0.0, -0.08, 0.0])
    objects = rng.normal(scale=0.05, size=(samples, OBJECT_POINTS, 3))
    return list(hands.astype(np.float32)), list(objects.astype(np.float32))


def per_sample(hands: list[np.ndarray], objects: list[np.ndarray], n: int) -> list:
    from ops.joint_cloud import joint_cloud

    return [joint_cloud(hand, obj, n) for hand, obj in zip(hands, objects, strict=True)]


def batched(hands: list[np.ndarray], objects: list[np.ndarray], n: int, batch_size: int | None = None) -> list:
    from ops.joint_cloud import FPS_BATCH, joint_clouds

    return joint_clouds(hands, objects, n, batch_size=batch_size or FPS_BATCH)


def timed(run: Callable[[], list], threads: int) -> tuple[list, float]:
    """run()'s clouds and its wall-clock seconds, with torch (and so joint_clouds) on `threads` threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        clouds = run()
        return clouds, time.perf_counter() - start
    finally:
        torch.set_num_threads(before)


def check_same(expected: list, got: list) -> None:
    """Refuse to report a speed-up of different work: every cloud must be equal, index for index."""
    for i, (a, b) in enumerate(zip(expected, got, strict=True)):
        if isinstance(b, Exception) or not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)):
            raise SystemExit(f"sample {i}: the batched cloud differs from the per-sample one")


def compare(preset: str, n: int, hands: list[np.ndarray], objects: list[np.ndarray]) -> list[list]:
    """Table rows (preset, n, threads, per-sample s, samples/s, batched s, samples/s, speed-up) per thread count."""
    rows = []
    for threads in THREADS:
        reference, slow = timed(lambda: per_sample(hands, objects, n), threads)
        clouds, fast = timed(lambda: batched(hands, objects, n), threads)
        check_same(reference, clouds)
        samples = len(hands)
        row = [preset, n, threads, samples, round(slow, 2), samples / slow, round(fast, 2), samples / fast, slow / fast]
        print(json.dumps(dict(zip(["preset", "points", "threads", "samples", "per_sample_s", "per_sample_per_s",
                                   "batched_s", "batched_per_s", "speedup"], row, strict=True))), flush=True)
        rows.append(row)
    return rows


def chunk_sweep(n: int, hands: list[np.ndarray], objects: list[np.ndarray], sizes: list[int]) -> list[list]:
    """Table rows (chunk size, threads, samples/s) of the batched path."""
    rows = []
    for threads in THREADS:
        for size in sizes:
            _, seconds = timed(lambda size=size: batched(hands, objects, n, size), threads)
            rows.append([size, threads, len(hands) / seconds])
            print(json.dumps({"chunk": size, "threads": threads, "samples_per_s": round(len(hands) / seconds, 1)}),
                  flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("cpu", "paper"), nargs="+", default=["cpu"],
                        help="classifier presets whose point count the clouds are sampled to")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--sweep-samples", type=int, default=512, help="samples per chunk-size measurement")
    parser.add_argument("--chunks", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256],
                        help="chunk sizes for the sweep (first preset only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/cloud_prep).")
    args = parser.parse_args()
    for name in ("samples", "sweep_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if min(args.chunks) < 1:
        parser.error(f"--chunks must all be >= 1, got {args.chunks}")
    from bench.record import bench_table, finish, load_text, started
    from models.point_bert import PRESETS

    header = started("cloud_prep", seed=args.seed)
    hands, objects = make_inputs(args.samples, args.seed)
    rows = [row for preset in args.preset for row in compare(preset, PRESETS[preset].num_points, hands, objects)]
    sweep_n = PRESETS[args.preset[0]].num_points
    sweep = chunk_sweep(sweep_n, hands[:args.sweep_samples], objects[:args.sweep_samples], args.chunks)
    tables = [
        bench_table(["preset", "points", "torch threads", "samples", "per-sample s", "per-sample samples/s",
                     "batched s", "batched samples/s", "speed-up"], rows,
                    ["", "d", "d", "d", ".2f", ".1f", ".2f", ".1f", ".2f"]),
        bench_table(["chunk (samples per FPS call)", "torch threads", "batched samples/s"], sweep, ["d", "d", ".1f"],
                    heading=f"Chunk size ({args.sweep_samples} samples, {sweep_n} points)"),
    ]
    text = [f"{HAND_VERTS} hand vertices + {OBJECT_POINTS} object points per sample (float32, metres), farthest-point "
            "sampled to the preset's point count as the classifier reads them. \"Per-sample\" is `joint_cloud` in a "
            "loop (numpy FPS, one cloud at a time: what the pseudo-label stage did before); \"batched\" is "
            "`joint_clouds` (the same FPS on chunks of clouds, chunks on as many threads as torch is given), which "
            "`clouds_from_rows` now uses. Every batched cloud was checked equal to its per-sample cloud. One timed "
            f"pass each, in the order per-sample then batched for each thread count; {load_text()}."]
    finish(header, "cloud_prep", "Classifier cloud preparation (farthest-point sampling)", text, tables,
           out=args.results)


if __name__ == "__main__":
    main()
