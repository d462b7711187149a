"""Inference throughput of the Point-BERT affordance classifier (eval mode, no gradients).

    python -m bench.bench_classifier --preset cpu paper --device cpu
    python -m bench.bench_classifier --preset paper --device cuda --samples 4096 --batch-size 128
    afford report docs/results/classifier --update BENCHMARKS.md

Two figures per run: the model alone (clouds already in memory, batched), and the cloud preparation that feeds
it (`joint_cloud`: farthest-point sampling of hand and object, one sample at a time, as the pseudo-label stage
does it). Weights are freshly initialised: throughput does not depend on what the weights learned. Clouds are
random hands (778 points) and objects (2048 points) of the sizes ingest writes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (samples, batch size) per preset when not given: the paper preset is ~8x the work per sample on a CPU.
DEFAULTS = {"cpu": (512, 64), "paper": (64, 16)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_throughput(preset: str, device_name: str, samples: int, batch_size: int, repeats: int) -> dict:
    from models.device import resolve_device
    from models.point_bert import PRESETS, PointTransformer

    config = PRESETS[preset]
    device = resolve_device(device_name)
    torch.manual_seed(0)
    model = PointTransformer(config).to(device).eval()
    clouds = torch.randn(samples, config.num_points, 3).to(device)
    with torch.no_grad():
        model(clouds[:batch_size])  # warm-up: kernels, allocator
        _sync(device)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, samples, batch_size):
                model(clouds[i:i + batch_size])
            _sync(device)
            best = min(best, time.perf_counter() - start)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return {"preset": preset, "device": name, "points": config.num_points, "batch_size": batch_size,
            "samples": samples, "seconds": round(best, 3), "samples_per_s": round(samples / best, 1)}


def cloud_throughput(num_points: int, samples: int) -> dict:
    """Joint clouds of `samples` random samples, farthest-point sampled in batches as the pseudo-label stage does
    (`joint_clouds`, the same picks as one sample at a time)."""
    from ops.joint_cloud import joint_clouds

    rng = np.random.default_rng(0)
    hands = list(rng.normal(scale=0.03, size=(samples, 778, 3)))
    objects = list(rng.normal(scale=0.05, size=(samples, 2048, 3)))
    start = time.perf_counter()
    joint_clouds(hands, objects, num_points)
    seconds = time.perf_counter() - start
    return {"points": num_points, "samples": samples, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("cpu", "paper"), nargs="+", default=["cpu"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--samples", type=int, default=None, help="default per preset: cpu 512, paper 64")
    parser.add_argument("--batch-size", type=int, default=None, help="default per preset: cpu 64, paper 16")
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/classifier).")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the samples; the best is kept")
    parser.add_argument("--cloud-samples", type=int, default=200, help="samples for the cloud-preparation figure")
    args = parser.parse_args()
    for name in ("samples", "batch_size", "repeats", "cloud_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    from bench.record import bench_table, finish, load_text, started
    from models.point_bert import PRESETS

    header = started("classifier", seed=0)
    rows = []
    for preset in args.preset:
        samples, batch = args.samples or DEFAULTS[preset][0], args.batch_size or DEFAULTS[preset][1]
        model = model_throughput(preset, args.device, samples, batch, args.repeats)
        cloud = cloud_throughput(PRESETS[preset].num_points, args.cloud_samples)
        print(json.dumps({"model": model, "cloud_preparation": cloud}))
        end_to_end = 1 / (1 / model["samples_per_s"] + 1 / cloud["samples_per_s"])
        rows.append([preset, model["device"], model["points"], batch, model["samples_per_s"],
                     cloud["samples_per_s"], end_to_end])
    text = ["Eval mode, no gradients, freshly initialised weights (throughput does not depend on what they "
            f"learned), best of {args.repeats} timed passes. \"Cloud preparation\" is the step before the model: "
            "farthest-point sampling of 778 hand vertices + 2048 object points down to the preset's point count, "
            "in batches as the pseudo-label stage does it; \"end to end\" is 1 / (1/model + 1/cloud); "
            f"{load_text()}."]
    table = bench_table(["preset", "device", "points", "batch", "model samples/s", "cloud preparation samples/s",
                         "end to end samples/s"], rows, ["", "", "d", "d", ".1f", ".1f", ".1f"])
    finish(header, "classifier", "Affordance classifier (Point-BERT) inference", text, [table], out=args.results)


if __name__ == "__main__":
    main()
