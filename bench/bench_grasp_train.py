"""Training and sampling speed of the grasp generator (hand AE -> latent diffusion -> DAM).

    python -m bench.bench_grasp_train --preset tiny --device cpu
    python -m bench.bench_grasp_train --preset paper --device cuda --steps 50 --batch-size 128

Trains each stage for `--steps` steps on the tests' synthetic annotated rows (valid MANO grasps on spheres; the
text embedding is a fixed stand-in, which does not change the cost), then times sampling of one grasp and of a
batch of `--grasps` (DDIM steps as the preset). Prints a Markdown table: steps/s and samples/s per stage, peak
memory (CUDA's allocator peak, else the process's peak RSS), seconds per grasp single and batched.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

import torch


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


def run(preset: str, device_name: str, steps: int, batch_size: int | None, grasps: int, threads: int | None) -> str:
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
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()}-thread CPU"
    lines = [f"Grasp generator, preset `{preset}` on {gpu} (torch {torch.__version__}); batch {config.batch_size}, "
             f"{config.num_points} object points; parameters AE {counts['ae']:,}, diffusion {counts['diffusion']:,}, "
             f"DAM {counts['dam']:,}.", "",
             "| measure | value |", "| --- | --- |"]
    for stage, (n, seconds) in _stage_seconds(result.history, STAGES).items():
        lines.append(f"| {stage}: steps/s | {n / seconds:.1f} |")
        lines.append(f"| {stage}: samples/s | {n * config.batch_size / seconds:.0f} |")
    per_grasp = timings[grasps] / grasps
    lines += [f"| all stages: steps/s (incl. logging) | {result.steps_per_s:.1f} |",
              f"| peak memory ({'CUDA allocator' if device.type == 'cuda' else 'process RSS'}) | {peak:.0f} MiB |",
              f"| sampling, 1 grasp ({config.ddim_steps} DDIM steps + DAM) | {timings[1]:.3f} s |",
              f"| sampling, {grasps} grasps batched | {timings[grasps]:.3f} s ({per_grasp:.4f} s/grasp) |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=40, help="Steps of each stage.")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--grasps", type=int, default=16, help="Batch size of the batched sampling measure.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's).")
    args = parser.parse_args()
    print(run(args.preset, args.device, args.steps, args.batch_size, args.grasps, args.threads))


if __name__ == "__main__":
    main()
