"""One check of a CUDA machine: grasp-generator training and sampling, classifier and affordance-map inference.

    bash bench/gpu_check.sh                               # a fresh clone on a machine with one CUDA GPU
    bash bench/gpu_check.sh --device cpu --tiny           # the same path on a CPU in a minute or two (CI runs it)
    python -m bench.gpu_check [--device cuda] [--tiny] [--out DIR]   # in a venv that already has torch

GPU mode (default): the `paper` presets. The grasp generator (hand autoencoder -> latent diffusion -> DAM) trains
`--steps` steps of each stage, in bf16 autocast on CUDA, on synthetic annotated rows (valid MANO grasps on
spheres from the tests' factories, a fixed stand-in text embedding: the cost is the real one); then one grasp and
a batch of grasps are sampled. Point-BERT (`paper`) and the affordance-map model (`paper`) are timed on random
clouds. `--tiny`: the CPU presets at a few steps, so the script itself is exercised where there is no GPU.

Writes `<out>/result.json` (kind `gpu_check`; `afford report <out> --update BENCHMARKS.md` fills the block of that
name) and `<out>/result.md`, and prints where they are. On an H100-class GPU the whole check, install excluded,
is meant to take a few minutes (docs/training.md lists what to expect).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# What each mode runs: presets and sizes. GPU: sized to finish in minutes on one H100-class GPU.
SIZES = {
    "gpu": {"grasp_preset": "paper", "steps": 100, "grasps": 64,
            "classifier_preset": "paper", "classifier_samples": 512, "classifier_batch": 64,
            "map_preset": "paper", "map_objects": 256, "map_points": 2048, "map_batch": 32},
    "tiny": {"grasp_preset": "tiny", "steps": 4, "grasps": 4,
             "classifier_preset": "cpu", "classifier_samples": 16, "classifier_batch": 8,
             "map_preset": "tiny", "map_objects": 8, "map_points": 256, "map_batch": 4},
}


def check(device: str, sizes: dict, steps: int | None) -> tuple[list[str], list[dict]]:
    """(paragraphs, tables) of bench/record.py: grasp training and sampling, then both inference figures."""
    from bench.bench_affordance import throughput
    from bench.bench_classifier import model_throughput
    from bench.bench_grasp_train import run
    from bench.record import bench_table

    started = time.perf_counter()
    grasp_text, grasp_table = run(sizes["grasp_preset"], device, steps or sizes["steps"], None, sizes["grasps"],
                                  None)
    grasp_table["heading"] = "Grasp generator: training and sampling"
    classifier = model_throughput(sizes["classifier_preset"], device, sizes["classifier_samples"],
                                  sizes["classifier_batch"], repeats=2)
    maps = throughput(sizes["map_preset"], device, sizes["map_objects"], sizes["map_points"], [sizes["map_batch"]])
    inference = bench_table(
        ["model", "preset", "device", "batch", "throughput", "unit"],
        [["Point-BERT classifier", classifier["preset"], classifier["device"], classifier["batch_size"],
          classifier["samples_per_s"], "samples/s"],
         ["affordance-map model", maps["preset"], maps["gpu"] or f"cpu ({maps['torch_threads']} threads)",
          maps["results"][0]["batch_size"], maps["results"][0]["objects_per_s"], "objects/s"]],
        ["", "", "", "d", ".1f", ""], heading="Inference")
    seconds = time.perf_counter() - started
    text = [*grasp_text, f"Classifier on {classifier['samples']} random clouds of {classifier['points']} points; "
                         f"maps on {maps['objects']} random objects of {maps['points']} points. The whole check took "
                         f"{seconds:.0f} s after imports."]
    return text, [grasp_table, inference]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--tiny", action="store_true", help="CPU-sized presets and a few steps (a dry run)")
    parser.add_argument("--steps", type=int, default=None, help="steps of each grasp-generator stage (default: "
                                                                "100 on a GPU, 4 with --tiny)")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for result.json/result.md")
    args = parser.parse_args()
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA GPU; run "
                         f"bench/gpu_check.sh, which installs the CUDA build, or pass --device cpu --tiny")
    from bench.record import finish, started

    header = started("gpu_check", seed=0)
    text, tables = check(args.device, SIZES["tiny" if args.tiny else "gpu"], args.steps)
    mode = "dry run (--tiny)" if args.tiny else "paper presets"
    folder = finish(header, "gpu_check", f"GPU check: {mode} on {args.device}", text, tables, args.out)
    print(f"gpu check done: {(folder / 'result.json').absolute()}")


if __name__ == "__main__":
    main()
