"""Training and sampling speed of the grasp generator (hand AE -> latent diffusion -> DAM).

    python -m bench.bench_grasp_train --preset tiny --device cpu
    python -m bench.bench_grasp_train --preset paper --device cuda --steps 50 --batch-size 128
    afford report docs/results/grasp_train --update BENCHMARKS.md

Trains each stage for `--steps` steps on the tests' synthetic annotated rows (valid MANO grasps on spheres; the
text embedding is a fixed stand-in, which does not change the cost), then times sampling of one grasp and of a
batch of `--grasps` (DDIM steps as the preset). Writes docs/results/grasp_train/: steps/s and samples/s per stage,
peak memory (CUDA's allocator peak, else the process's peak RSS), seconds per grasp single and batched.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stage_seconds(history: list[dict], stages: tuple[str, ...]) -> dict[str, tuple[int, float]]:
    """(steps, seconds) per stage from a log_every=1 history (elapsed_s is cumulative)."""
    out, previous = {}, 0.0
    for stage in stages:
        records = [r for r in history if r["stage"] == stage]
        if records:
            out[stage] = (len(records), records[-1]["elapsed_s"] - previous)
            previous = records[-1]["elapsed_s"]
    return out


def run(preset: str, device_name: str, steps: int, batch_size: int | None, grasps: int,
        threads: int | None) -> tuple[list[str], dict]:
    """(paragraphs, table) of bench/record.py for one preset."""
    from models.device import resolve_device
    from tasks.grasp.config import STAGES, preset_config
    from tasks.grasp.data import items_from_rows, mano_layer
    from tasks.grasp.sample import GraspGenerator, sample_grasps
    from tasks.grasp.train import train_grasp_model
    from tests.grasp_factories import annotated_rows, fake_embed

    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    config = preset_config(preset, steps, batch_size=batch_size, device=str(device), log_every=1,
                           checkpoint_every=10 * steps)
    mano, _ = mano_layer()
    rows = annotated_rows(n=max(16, config.batch_size), affordpose=0, other_split=0, num_points=config.num_points)
    items = items_from_rows(rows, mano, fake_embed, num_points=config.num_points)
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # the first optimiser imports torch._dynamo (seconds)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory() as out:
        result = train_grasp_model(items, mano, config, out)
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    generator = GraspGenerator(result.models, config, {})
    args = (items.object_points[0], items.affordance_map[0], items.text_embeddings[0])
    timings = {}
    for k in (1, grasps):
        sample_grasps(generator, *args, k, seed=0)  # warm-up
        _sync(device)
        start = time.perf_counter()
        sample_grasps(generator, *args, k, seed=1)
        _sync(device)
        timings[k] = time.perf_counter() - start
    counts = {name: sum(p.numel() for p in getattr(result.models, name).parameters()) for name in ("ae", "diffusion",
                                                                                                    "dam")}
    from bench.record import bench_table, load_text

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()}-thread CPU"
    text = [f"Preset `{preset}` on {gpu}: batch {config.batch_size}, {config.num_points} object points, {steps} "
            f"steps of each stage on synthetic annotated rows (valid MANO grasps on spheres; a fixed stand-in text "
            f"embedding, which does not change the cost); parameters AE {counts['ae']:,}, diffusion "
            f"{counts['diffusion']:,}, DAM {counts['dam']:,}; {load_text()}."]
    rows: list[list] = []
    for stage, (n, seconds) in _stage_seconds(result.history, STAGES).items():
        rows.append([f"{stage}: steps/s", round(n / seconds, 1)])
        rows.append([f"{stage}: samples/s", round(n * config.batch_size / seconds)])
    rows += [["all stages: steps/s (incl. logging)", round(result.steps_per_s, 1)],
             [f"peak memory, MiB ({'CUDA allocator' if device.type == 'cuda' else 'process RSS'})", round(peak)],
             [f"sampling, 1 grasp ({config.ddim_steps} DDIM steps + DAM), s", round(timings[1], 3)],
             [f"sampling, {grasps} grasps batched, s", round(timings[grasps], 3)],
             ["sampling, s per grasp when batched", round(timings[grasps] / grasps, 4)]]
    return text, bench_table(["measure", "value"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=40, help="Steps of each stage.")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--grasps", type=int, default=16, help="Batch size of the batched sampling measure.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/grasp_train).")
    args = parser.parse_args()
    from bench.record import finish, started

    header = started("grasp_train", seed=0)
    text, table = run(args.preset, args.device, args.steps, args.batch_size, args.grasps, args.threads)
    finish(header, "grasp_train", f"Grasp generator training ({args.preset} preset)", text, [table],
           out=args.results)


if __name__ == "__main__":
    main()
