"""`afford render`: a PNG of a sample's hand and object from two views."""

from __future__ import annotations

from pathlib import Path

import typer

from schemas.hand import hand_faces_for
from tasks.store.errors import TableError


def render(
    table: Path = typer.Argument(..., help="A samples table (from `afford ingest`)."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    sample_id: str | None = typer.Option(None, help="The sample to draw (default: the first row)."),
    mano_root: Path | None = typer.Option(None, help="MANO folder, for the hand's faces (default: the generated "
                                                     "hand's topology, which is MANO's)."),
) -> None:
    """Draw one hand-object pair (object coloured by part affordance, hand in skin colour) from two views."""
    from models.mano_pickle import load_mano_pickle, mano_file
    from models.synthetic_hand import build_synthetic_hand
    from ops.render import render_pair
    from schemas.rows import Sample
    from tasks.store.read import open_table

    try:
        rows = open_table(table, Sample).iter_rows()
        row = next((r for r in rows if sample_id is None or r.sample_id == sample_id), None)
    except TableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if row is None:
        typer.echo(f"error: {table}: no sample {sample_id!r}" if sample_id else f"error: {table} is empty", err=True)
        raise typer.Exit(1)
    if row.hand_verts is None:
        typer.echo(f"error: sample {row.sample_id} has no hand vertices to draw", err=True)
        raise typer.Exit(1)
    faces = (load_mano_pickle(mano_file(mano_root, "right")) if mano_root else build_synthetic_hand()).f
    vertices, obj_faces = row.object_vertices, row.object_faces
    if vertices is None or obj_faces is None:
        typer.echo(f"error: sample {row.sample_id} carries no object mesh (only points); nothing to draw", err=True)
        raise typer.Exit(1)
    path = render_pair(out, vertices, obj_faces, row.hand_verts, hand_faces_for(row.hand_faces, faces),
                       object_vertex_labels=row.object_vertex_labels,
                       title=f"{row.dataset} {row.object_category} {row.affordance or row.intent or ''}")
    typer.echo(f"wrote {path.resolve()}")
