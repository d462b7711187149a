"""Inference throughput of the Point-BERT affordance classifier (eval mode, no gradients).

    python -m bench.bench_classifier --preset cpu --device cpu --samples 512
    python -m bench.bench_classifier --preset paper --device cuda --samples 4096 --batch-size 128

Two figures per run: the model alone (clouds already in memory, batched), and the cloud preparation that feeds
it (`joint_cloud`: farthest-point sampling of hand and object, one sample at a time, as the pseudo-label stage
does it). Weights are freshly initialised: throughput does not depend on what the weights learned. Clouds are
random hands (778 points) and objects (2048 points) of the sizes ingest writes.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


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
    from ops.joint_cloud import joint_cloud

    rng = np.random.default_rng(0)
    hands = rng.normal(scale=0.03, size=(samples, 778, 3))
    objects = rng.normal(scale=0.05, size=(samples, 2048, 3))
    start = time.perf_counter()
    for hand, obj in zip(hands, objects, strict=True):
        joint_cloud(hand, obj, num_points)
    seconds = time.perf_counter() - start
    return {"points": num_points, "samples": samples, "seconds": round(seconds, 3),
            "samples_per_s": round(samples / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("cpu", "paper"), default="cpu")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the samples; the best is kept")
    parser.add_argument("--cloud-samples", type=int, default=200, help="samples for the cloud-preparation figure")
    args = parser.parse_args()
    for name in ("samples", "batch_size", "repeats", "cloud_samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    from models.point_bert import PRESETS

    result = {"model": model_throughput(args.preset, args.device, args.samples, args.batch_size, args.repeats),
              "cloud_preparation": cloud_throughput(PRESETS[args.preset].num_points, args.cloud_samples)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
