"""`afford sample`: K grasps of an object mesh for an instruction, rendered to one PNG (+ an .npz of the hands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer


def sample(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="grasp_model.pt (or checkpoints/last.pt) from "
                                                              "`afford train`."),
    object_mesh: Path = typer.Option(..., "--object", help="Object mesh in metres (OBJ, PLY, STL, ...)."),
    instruction: str = typer.Option(..., "--instruction", help="What to do, e.g. 'Grip the handle of the mug'."),
    n: int = typer.Option(4, "-n", "--num", min=1, max=256, help="Grasps to generate."),
    out: Path = typer.Option(..., "--out", help="PNG to write; the hands go to the same name with .npz."),
    map_checkpoint: Path | None = typer.Option(None, "--map-checkpoint", help="Affordance-map model (from `afford "
                                               "affordance`) to predict the map for the instruction; without it the "
                                               "whole object is the affordance region."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED",
                             help="Seed of the initial noise: the same seed gives the same grasps."),
    ddim_steps: int | None = typer.Option(None, min=1, max=1000, help="DDIM steps (default: training's)."),
    guidance: float | None = typer.Option(None, min=0.0, max=20.0, help="Classifier-free guidance scale w."),
    device: str = typer.Option("auto", envvar="AFFORD_DEVICE", help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Generate grasps in one pass (diffusion -> DAM -> MANO; no test-time optimisation) and draw them."""
    import time

    from tasks.grasp.sample import (
        instruction_embedding,
        load_grasp_generator,
        object_from_mesh,
        render_grasps,
        sample_grasps,
    )

    if not checkpoint.is_file():
        typer.echo(f"error: --checkpoint {checkpoint}: no such file", err=True)
        raise typer.Exit(2)
    if not instruction.strip():
        typer.echo("error: --instruction is empty", err=True)
        raise typer.Exit(2)
    if map_checkpoint is not None and not map_checkpoint.is_file():
        typer.echo(f"error: --map-checkpoint {map_checkpoint}: no such file", err=True)
        raise typer.Exit(2)
    try:
        generator = load_grasp_generator(checkpoint, device)
        points, vertices, faces = object_from_mesh(object_mesh, generator.train_config.num_points, seed)
        values = _affordance_map(points, instruction, map_checkpoint, device)
        start = time.perf_counter()
        grasps = sample_grasps(generator, points, values, instruction_embedding(instruction), n, seed, ddim_steps,
                               guidance)
        seconds = time.perf_counter() - start
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    np.savez(out.with_suffix(".npz"), mano=grasps.mano, verts=grasps.verts, object_points=points,
             affordance_map=values)
    path = render_grasps(out, vertices, faces, grasps.verts, generator.models.mano.th_faces.cpu().numpy(),
                         title=instruction)
    typer.echo(f"{n} grasps in {seconds:.2f} s ({seconds / n:.3f} s per grasp); wrote {path.resolve()} and "
               f"{out.with_suffix('.npz').resolve()}")


def _affordance_map(points: np.ndarray, instruction: str, map_checkpoint: Path | None, device: str) -> np.ndarray:
    """(N,) map: the affordance-map model's prediction for the instruction, or ones without a model."""
    if map_checkpoint is None:
        return np.ones(len(points), np.float32)
    from models.text_encoder import TextEncoder
    from tasks.affordance.inference import TextBank, load_map_model, predict_maps

    model = load_map_model(map_checkpoint, device)
    bank = TextBank([instruction], TextEncoder())
    return predict_maps(model.model, points[None], [0], bank)[0]
