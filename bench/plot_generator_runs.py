"""One figure of several `bench_generator` runs against the setting they differ in: the model's pooled contact,
displacement, penetration depth, entropy and ACC, each with its goal as a dashed line.

    python -m bench.plot_generator_runs --setting w_hand --out docs/grasp/w_hand_runs.png \\
        1=docs/results/generator_runs/val_dam_w1 3=docs/results/generator_runs/val_dam_w3 ...

Reads each run's result.json (its "Table 9 layout ... datasets pooled" table, the `model` row); draws nothing by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_generator import GOALS

# result table column -> (GOALS key, axis label)
PANELS = {"contact % (≤ 5 mm)": ("contact_ratio_percent", "contact %"),
          "simulation displacement cm (failed = 10)": ("sim_displacement_cm", "displacement cm"),
          "penetration depth cm": ("penetration_depth_cm", "penetration depth cm"),
          "entropy (min)": ("entropy", "entropy (smallest per dataset)"),
          "ACC %": ("acc_percent", "ACC %")}


def parse_run(spec: str) -> tuple[float, Path]:
    """'3=path/to/run' -> (3.0, path); ValueError naming the entry."""
    value, sep, folder = spec.partition("=")
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"run {spec!r}: expected VALUE=FOLDER with a number before '='") from None
    if not sep:
        raise ValueError(f"run {spec!r}: expected VALUE=FOLDER")
    if not (Path(folder) / "result.json").is_file():
        raise ValueError(f"run {spec!r}: {folder}/result.json does not exist")
    return x, Path(folder)


def pooled_model_row(result: Path) -> dict[str, float]:
    """The model row of the pooled Table 9 of one result.json, by column name."""
    figures = json.loads(result.read_text())["figures"]
    for table in figures["tables"]:
        if table.get("heading", "").startswith("Table 9 layout") and "pooled" in table["heading"]:
            for row in table["rows"]:
                if row[0] == "model":
                    return dict(zip(table["columns"], row, strict=True))
    raise ValueError(f"{result}: no pooled Table 9 with a model row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="VALUE=FOLDER", help="a run folder and its setting's value")
    parser.add_argument("--setting", required=True, help="the name of the setting the runs differ in (x axis)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        runs = sorted(parse_run(s) for s in args.runs)
        rows = [(x, pooled_model_row(folder / "result.json")) for x, folder in runs]
    except ValueError as exc:
        parser.error(str(exc))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PANELS), figsize=(3.2 * len(PANELS), 3.0))
    xs = [x for x, _ in rows]
    for axis, (column, (goal_key, label)) in zip(axes, PANELS.items(), strict=True):
        ys = [row[column] if isinstance(row[column], int | float) else float("nan") for _, row in rows]
        axis.plot(xs, ys, "o-", color="tab:blue")
        sense, target = GOALS[goal_key]
        axis.axhline(target, linestyle="--", color="tab:red", linewidth=1)
        axis.set_title(f"{label} (goal {sense} {target:g})", fontsize=8)
        axis.set_xlabel(args.setting, fontsize=8)
        axis.tick_params(labelsize=7)
    figure.suptitle(f"model on val objects against {args.setting} (runs: "
                    + ", ".join(folder.name for _, folder in runs) + ")", fontsize=9)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
