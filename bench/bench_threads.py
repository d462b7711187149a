"""torch threads per stage, on an idle and on a loaded machine: seconds per training step of the classifier and the
affordance-map model with 1, 2, ... intra-op threads, with and without other processes busy on every core.

    python -m bench.bench_threads --threads 1 2 --steps 8
    afford report docs/results/threads --update BENCHMARKS.md

"Loaded" starts one busy-looping process per logical core beside the measurement (another job on a shared
machine); "idle" starts none (other work already running on the machine shows in the load average below the
table). Models are the default presets on random inputs of the stages' shapes (batch 32 clouds of the preset's
points for the classifier; batch 16 clouds of 1024 points with one instruction each for the maps): the time of
a step does not depend on what the weights learned. The first step is a warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _busy() -> None:
    while True:
        pass


def classifier_step() -> Callable[[], None]:
    from models.point_bert import PRESETS, PointTransformer
    from models.preset_choices import CLASSIFIER_PRESETS

    config = PRESETS[CLASSIFIER_PRESETS.default]
    torch.manual_seed(0)
    model = PointTransformer(config).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    points = torch.randn(32, config.num_points, 3)
    labels = torch.randint(0, config.cls_dim, (32,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(points), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return step


def map_step() -> Callable[[], None]:
    from models.affordance_net import PRESETS, AffordanceNet
    from models.preset_choices import AFFORDANCE_PRESETS
    from models.text_encoder import TextEncoder
    from tasks.affordance.inference import TextBank

    torch.manual_seed(0)
    model = AffordanceNet(PRESETS[AFFORDANCE_PRESETS.default]).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    bank = TextBank(["Grip the handle of the mug securely", "Twist the cap of the bottle"], TextEncoder())
    tokens, mask = bank.batch([i % 2 for i in range(16)], torch.device("cpu"))
    points = torch.randn(16, 1024, 3) * 0.05
    target = (torch.rand(16, 1024) > 0.7).float()

    def step() -> None:
        logits = model(points, tokens, mask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return step


STAGES = {"classifier": classifier_step, "affordance maps": map_step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=8, help="Timed steps per setting (median reported).")
    parser.add_argument("--results", type=Path, default=None, help="Default: docs/results/threads.")
    args = parser.parse_args()
    if min(args.threads) < 1 or args.steps < 1:
        raise SystemExit("--threads and --steps must be >= 1")
    from bench.record import bench_table, finish, load_text, started
    from tasks.runtime.timing import median_seconds

    header = started("threads", seed=0)
    cores = os.cpu_count() or 1
    rows = []
    context = multiprocessing.get_context("spawn")
    for name, make in STAGES.items():
        step = make()
        for loaded in (False, True):
            hogs = [context.Process(target=_busy, daemon=True) for _ in range(cores if loaded else 0)]
            for hog in hogs:
                hog.start()
            try:
                for threads in args.threads:
                    torch.set_num_threads(threads)
                    seconds = median_seconds(step, args.steps)
                    rows.append([name, "loaded" if loaded else "idle", threads, seconds])
                    print(f"{name}, {'loaded' if loaded else 'idle'}, {threads} threads: {seconds:.3f} s/step",
                          flush=True)
            finally:
                for hog in hogs:
                    hog.terminate()
                    hog.join()
    text = [f"Median seconds per training step of {args.steps} after a warm-up. Loaded: {cores} busy-looping "
            f"processes beside the measurement, one per logical core. {load_text()} (the busy processes had "
            f"stopped by then)."]
    table = bench_table(["stage", "machine", "torch threads", "s/step"], rows, ["", "", "d", ".3f"])
    finish(header, "threads", "torch threads per stage, idle and loaded", text, [table], args.results)


if __name__ == "__main__":
    main()
