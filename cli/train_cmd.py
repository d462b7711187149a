"""`afford train`: train the grasp generator (hand AE -> latent diffusion -> DAM) on an annotated table."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from rich.console import Console
from rich.markdown import Markdown

from tasks.grasp.config import PRESETS

HEADS = (1, 2, 4)
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_train_options(annotated: Path, preset: str, dam_heads: int | None, device: str) -> str | None:
    """The first bad option, as an error message naming it; None when all are fine."""
    if preset not in PRESETS:
        return f"--preset {preset!r} is not one of {', '.join(PRESETS.names)}"
    if not (annotated / "manifest.json").is_file():
        return f"--annotated {annotated}: not a table (no manifest.json)"
    if dam_heads is not None and dam_heads not in HEADS:
        return f"--dam-heads {dam_heads} is not one of {', '.join(map(str, HEADS))}"
    if not DEVICE_PATTERN.match(device):
        return f"--device {device!r} is not auto, cpu, cuda or cuda:N"
    return None


def train(
    annotated: Path = typer.Option(..., "--annotated", help="The annotated table (the final join's output)."),
    out: Path = typer.Option(..., "--out", help="Folder for the model, checkpoints, log and loss curves; a run "
                                                "already there is resumed from its last checkpoint."),
    preset: str = typer.Option(PRESETS.default, help=PRESETS.help() + "; tiny: seconds on a CPU, proves the "
                                                     "path; small: under 30 min on 2 CPU cores, learns to grasp; "
                                                     "paper: FastGrasp sizes, for a GPU."),
    steps: int | None = typer.Option(None, min=1, max=10_000_000, help="Steps of each of the three stages "
                                                                       "(default: the preset's)."),
    batch_size: int | None = typer.Option(None, min=1, max=65536, help="Grasps per batch (default: the preset's)."),
    dam_heads: int | None = typer.Option(None, help="DAM attention heads: 1, 2 or 4 (default: the preset's)."),
    device: str = typer.Option("auto", envvar="AFFORD_DEVICE",
                               help="auto, cpu, cuda or cuda:N (CUDA trains under bf16 autocast)."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Seed of initialisation, batches and noise."),
    mano_root: Path | None = typer.Option(None, "--mano-root", help="Folder with MANO_RIGHT.pkl (default: "
                                                                    "AFFORD_MANO_ROOT, else the generated hand)."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the denoiser (worth it on a GPU)."),
    preview: int = typer.Option(4, min=0, max=32, help="Grasps to sample and render after training (0: none)."),
) -> None:
    """Train the grasp generator in three stages and render a few sampled grasps. Multi-GPU: see
    docs/grasp/training.md (torchrun -m tasks.grasp.train)."""
    error = check_train_options(annotated, preset, dam_heads, device)
    if error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    from flows.train_grasp import train_grasp
    from tasks.grasp.train import TrainingDiverged

    try:
        markdown = train_grasp(annotated_table=str(annotated), out_dir=str(out), preset=preset, steps=steps,
                               batch_size=batch_size, dam_heads=dam_heads, device=device, seed=seed,
                               mano_root=str(mano_root) if mano_root else None, compile=compile,
                               preview_grasps=preview)
    except (ValueError, TrainingDiverged) as exc:  # no usable rows, other sizes in --out, a NaN loss, ...
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    Console(width=max(Console().width, 140)).print(Markdown(markdown))
