"""Inference throughput of the affordance-map model (eval mode, no gradients), in objects per second.

    python -m bench.bench_affordance --preset cpu --device cpu --objects 128
    python -m bench.bench_affordance --preset paper --device cuda --objects 2048 --batch-size 64
    afford report docs/results/affordance_inference --update BENCHMARKS.md

An object is one cloud of `--points` points (2048, what ingest writes) with one instruction; the text features
are encoded once beforehand, as the stage does (`TextBank`), so the figure is the model alone. Weights are freshly
initialised: throughput does not depend on what they learned. Writes docs/results/affordance_inference/.
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(preset: str, device_name: str, objects: int, points: int, batch_sizes: list[int]) -> dict:
    from models.affordance_net import PRESETS, AffordanceNet
    from models.device import resolve_device
    from models.text_encoder import TextEncoder
    from tasks.affordance.inference import TextBank, predict_maps

    device = resolve_device(device_name)
    torch.manual_seed(0)
    model = AffordanceNet(PRESETS[preset]).to(device).eval()
    bank = TextBank(["Grip the handle of the mug securely", "Twist the cap of the bottle to open it"],
                    TextEncoder())
    clouds = np.random.default_rng(0).normal(size=(objects, points, 3)).astype(np.float32) * 0.05
    ids = [i % 2 for i in range(objects)]
    results = []
    for batch in batch_sizes:
        predict_maps(model, clouds[:batch], ids[:batch], bank, batch)  # warm-up
        _sync(device)
        start = time.perf_counter()
        predict_maps(model, clouds, ids, bank, batch)
        _sync(device)
        seconds = time.perf_counter() - start
        results.append({"batch_size": batch, "objects_per_s": round(objects / seconds, 1),
                        "ms_per_object": round(1000 * seconds / objects, 2)})
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"preset": preset, "device": str(device), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "parameters": sum(p.numel() for p in model.parameters()), "objects": objects, "points": points,
            "peak_gpu_mib": round(peak, 1) if peak else None, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=["cpu", "paper", "tiny"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--objects", type=int, default=128)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/affordance_inference).")
    args = parser.parse_args()
    from bench.record import bench_table, finish, load_text, started

    header = started("affordance_inference", seed=0)
    r = throughput(args.preset, args.device, args.objects, args.points, args.batch_size)
    print(json.dumps(r, indent=2))
    device = r["gpu"] or f"CPU, {r['torch_threads']} threads"
    rows = [[r["preset"], device, b["batch_size"], b["objects_per_s"], b["ms_per_object"], r["peak_gpu_mib"]]
            for b in r["results"]]
    text = [f"{r['objects']} objects of {r['points']} points, one instruction each, text features encoded once "
            f"beforehand as the stage does; {r['parameters']:,} parameters, freshly initialised; {load_text()}."]
    table = bench_table(["preset", "device", "batch", "objects/s", "ms per object", "peak GPU MiB"], rows,
                        ["", "", "d", ".1f", ".2f", ".0f"])
    finish(header, "affordance_inference", "Affordance-map inference", text, [table], out=args.results)


if __name__ == "__main__":
    main()
