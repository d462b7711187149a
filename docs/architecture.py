"""Regenerate docs/architecture.png: the annotation DAG, the tables between its stages, and where people and
services come in.

    .venv/bin/python docs/architecture.py

Each stage box names the package that holds its code (tasks/<stage>/, flows/<stage>.py); each table box is a
table under `<data root>/tables/`. The picture is drawn from the lists below, so a new stage or table is one line.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

OUT = Path(__file__).parent / "architecture.png"

# (name, code, x, y): stages of the annotate flow, then the downstream flows.
STAGES = [
    ("ingest", "tasks/ingest", 0.0, 3.0),
    ("self-training\npseudo-label, 3σ, review", "tasks/pseudo_label", 6.0, 3.0),  # noqa: RUF001
    ("instruct", "tasks/instruct", 12.0, 4.4),
    ("affordance maps", "tasks/affordance", 12.0, 1.6),
    ("annotated join", "tasks/store", 18.0, 3.0),
    ("train generator", "tasks/grasp", 24.0, 4.4),
    ("evaluate grasps", "tasks/grasp/evaluation", 24.0, 1.6),
    ("fit MANO to AffordPose\nhands (afford fit-mano)", "tasks/fit_mano", 6.0, 0.9),
]
# (table, x, y): the tables between the stages, under <data root>/tables/.
TABLES = [
    ("affordpose, oakink,\ngrab, ho3d, rejects", 3.0, 3.0),
    ("labels, review,\naffordance_labels", 9.0, 3.0),
    ("instructions", 15.0, 4.4),
    ("affordance_maps", 15.0, 1.6),
    ("annotated", 21.0, 3.0),
    ("mano_fits", 18.0, 0.9),
]
# Arrows as (kind, index) pairs: stage -> table -> stage.
EDGES = [(("s", 0), ("t", 0)), (("t", 0), ("s", 1)), (("s", 1), ("t", 1)), (("t", 1), ("s", 2)),
         (("t", 1), ("s", 3)), (("s", 2), ("t", 2)), (("s", 3), ("t", 3)), (("t", 2), ("s", 4)),
         (("t", 3), ("s", 4)), (("s", 4), ("t", 4)), (("t", 4), ("s", 5)), (("s", 5), ("s", 6)),
         (("t", 0), ("s", 7)), (("s", 7), ("t", 5)), (("t", 5), ("s", 4))]
# (who, x, y, stage index): people and services outside the engine.
ACTORS = [
    ("datasets on disk\n(their own formats)", 0.0, 5.6, 0),
    ("reviewers\n(web app, Prefect UI)", 6.0, 5.6, 1),
    ("LLM endpoint\n(OpenAI-compatible)", 12.0, 6.2, 2),
    ("GPU / torchrun", 24.0, 6.2, 5),
]
STAGE_COLOUR, TABLE_COLOUR, ACTOR_COLOUR = "#dbe9f6", "#f3f3f3", "#fde9c9"
STAGE_SIZE, TABLE_SIZE, ACTOR_SIZE = (2.6, 1.0), (2.2, 0.8), (2.4, 0.8)


def box(ax: plt.Axes, x: float, y: float, text: str, colour: str, width: float = 2.4, height: float = 0.9,
        size: int = 9, style: str = "round,pad=0.08") -> None:
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle=style, fc=colour,
                                ec="#555555", lw=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def edge(centre: tuple[float, float], size: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's centre toward a point leaves the box (so arrows start and end on edges)."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    scale = min(size[0] / 2 / abs(dx) if dx else float("inf"), size[1] / 2 / abs(dy) if dy else float("inf"))
    return centre[0] + dx * scale * 1.08, centre[1] + dy * scale * 1.08


def arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], sizes: tuple[tuple, tuple],
          colour: str = "#333333", dashed: bool = False) -> None:
    ax.add_patch(FancyArrowPatch(edge(start, sizes[0], end), edge(end, sizes[1], start), arrowstyle="-|>",
                                 mutation_scale=12, lw=1.1, color=colour, linestyle="--" if dashed else "-",
                                 shrinkA=0, shrinkB=0))


def main() -> None:
    fig, ax = plt.subplots(figsize=(20, 5.6))
    for name, code, x, y in STAGES:
        box(ax, x, y, f"{name}\n[{code}]", STAGE_COLOUR, *STAGE_SIZE)
    for text, x, y in TABLES:
        box(ax, x, y, text, TABLE_COLOUR, *TABLE_SIZE, size=8, style="square,pad=0.05")
    def centre(node: tuple[str, int]) -> tuple[float, float]:
        kind, index = node
        return tuple(STAGES[index][2:]) if kind == "s" else tuple(TABLES[index][1:])

    size = {"s": STAGE_SIZE, "t": TABLE_SIZE}
    for a, b in EDGES:
        arrow(ax, centre(a), centre(b), (size[a[0]], size[b[0]]))
    for who, x, y, stage in ACTORS:
        box(ax, x, y, who, ACTOR_COLOUR, *ACTOR_SIZE, size=8)
        arrow(ax, (x, y), STAGES[stage][2:], (ACTOR_SIZE, STAGE_SIZE), colour="#b36b00", dashed=True)
    ax.text(9.0, -0.5, "annotate flow (flows/annotate.py): ingest -> self_training -> instruct -> affordance -> join;"
            "\nreannotate (flows/reannotate.py) reruns it for the changed samples of a dataset on a dataset.changed "
            "event; the samples tables feed every later stage",
            ha="center", fontsize=8.5, color="#333333")
    ax.text(24.0, 0.2, "train_grasp -> evaluate_grasp\n(flows/train_grasp.py, flows/evaluate_grasp.py)",
            ha="center", fontsize=8.5, color="#333333")
    legend = [("stage [package]", STAGE_COLOUR), ("table (Parquet shards + manifest)", TABLE_COLOUR),
              ("people and services", ACTOR_COLOUR)]
    for i, (label, colour) in enumerate(legend):
        ax.add_patch(FancyBboxPatch((-1.2 + 4.4 * i, -1.35), 0.35, 0.3, boxstyle="square,pad=0", fc=colour,
                                    ec="#555555"))
        ax.text(-0.75 + 4.4 * i, -1.2, label, va="center", fontsize=8.5)
    ax.set_xlim(-1.6, 25.6)
    ax.set_ylim(-1.6, 7.0)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110, bbox_inches="tight")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
