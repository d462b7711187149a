"""The arguments every bench that compares settings of one trained `small` model on the val objects shares
(bench_tta_weights, bench_sampling), and its checkpoint, refused before any work when it does not exist."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_val_model_arguments(parser: argparse.ArgumentParser, kind: str) -> None:
    """--data-root, --checkpoint, --objects, --grasps, --workers, --seed, --results (default docs/results/<kind>)."""
    parser.add_argument("--data-root", type=Path, default=Path("afford-data/generator"))
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="default: <data-root>/grasp/small/heads4/grasp_model.pt")
    parser.add_argument("--objects", type=int, default=12, help="val (object, affordance) pairs per dataset")
    parser.add_argument("--grasps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None, help=f"default: docs/results/{kind}")


def val_checkpoint(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """--checkpoint, or the one `python -m bench.bench_generator` writes; a usage error (exit 2) naming it and the
    command that makes it when the file does not exist."""
    checkpoint = args.checkpoint or args.data_root / "grasp" / "small" / "heads4" / "grasp_model.pt"
    if not checkpoint.is_file():
        parser.error(f"--checkpoint {checkpoint} does not exist: run `python -m bench.bench_generator` first")
    return checkpoint
