"""`afford annotate` and `afford reannotate`: the annotate flow on your own datasets, in this process.

No Prefect server is needed (the flow runs on Prefect's ephemeral API); with `--reviewer web` each self-training
cycle waits for people to review its queue in the web app (`afford review serve`), as in the deployment.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cli.flow_report import invocation, print_flow_report
from cli.ingest_cmd import resolve_mano_root
from models.preset_choices import AFFORDANCE_PRESETS, CLASSIFIER_PRESETS
from schemas.settings import AffordSettings
from tasks.ingest.formats import FORMATS, labelled_format

GENERATORS = ("auto", "openai", "template")
REVIEWERS = ("web", "simulated")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(f"{option} {value!r} is not one of {', '.join(choices)}")


def annotate(
    datasets_root: Path = typer.Option(..., "--datasets-root", help="Folder holding one folder per dataset format "
                                                                    f"({', '.join(FORMATS)})."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Where tables, models and reports go "
                                                                    "(default: AFFORD_DATA_ROOT)."),
    mano_root: Path | None = typer.Option(None, "--mano-root", help="Folder with MANO_RIGHT.pkl (default: "
                                                                    "AFFORD_MANO_ROOT, else <datasets-root>/mano, "
                                                                    "else a generated hand)."),
    reviewer: str = typer.Option("web", help="web: each cycle waits for people in the review web app; simulated: "
                                             "answers from the synthetic ground truth under --truth-root."),
    review_url: str = typer.Option("http://127.0.0.1:8765", help="The review web app (reviewer web)."),
    truth_root: Path | None = typer.Option(None, "--truth-root", help="Synthetic ground truth for the simulated "
                                                                      "reviewer (default: --datasets-root)."),
    instructions: str = typer.Option("auto", help="Instruction generator: auto, openai or template."),
    classifier_preset: str = typer.Option(CLASSIFIER_PRESETS.default, help=CLASSIFIER_PRESETS.help()),
    affordance_preset: str = typer.Option(AFFORDANCE_PRESETS.default, help=AFFORDANCE_PRESETS.help()),
    epochs: int = typer.Option(50, min=1, max=10_000, help="Classifier training epochs (cycle 0)."),
    max_cycles: int = typer.Option(5, min=1, max=100, help="Self-training cycles at most."),
    queue_size: int = typer.Option(100, min=1, max=10_000, help="Review queue size per cycle."),
    review_overlap: float = typer.Option(0.0, "--review-overlap", min=0.0, max=1.0,
                                         help="Share of each review queue that two reviewers decide, to measure "
                                              "their agreement (e.g. 0.1)."),
    affordance_steps: int = typer.Option(450, min=1, max=1_000_000, help="Affordance-map model training steps."),
    num_points: int = typer.Option(2048, min=16, max=65536, help="Object surface points per sample."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Random seed."),
) -> None:
    """Annotate every dataset folder under --datasets-root end to end (ingest, self-training with review,
    instructions, affordance maps, the annotated join) and print each stage's summary."""
    _check_choice("--reviewer", reviewer, REVIEWERS)
    _check_choice("--instructions", instructions, GENERATORS)
    _check_choice("--classifier-preset", classifier_preset, CLASSIFIER_PRESETS.names)
    _check_choice("--affordance-preset", affordance_preset, AFFORDANCE_PRESETS.names)
    if not datasets_root.is_dir():
        _fail(f"--datasets-root {datasets_root}: not a directory")
    if not any((datasets_root / fmt).is_dir() for fmt in FORMATS):
        _fail(f"--datasets-root {datasets_root}: no dataset folder inside (expected one of {', '.join(FORMATS)})")
    root = (data_root or AffordSettings().data_root).resolve()
    mano, _ = resolve_mano_root(mano_root, datasets_root / labelled_format())
    from tasks.instruct.choice import check_endpoint

    check_endpoint(instructions, AffordSettings())  # a refused or absent endpoint fails now, not after ingest
    from flows.annotate import annotate as annotate_flow

    report = annotate_flow(datasets_root=str(datasets_root.resolve()), mano_root=str(mano), data_root=str(root),
                           num_points=num_points, seed=seed, reviewer=reviewer, review_url=review_url,
                           truth_root=str(truth_root or datasets_root), epochs=epochs, max_cycles=max_cycles,
                           queue_size=queue_size, review_overlap=review_overlap, instructions=instructions,
                           affordance_steps=affordance_steps,
                           affordance_preset=affordance_preset, classifier_preset=classifier_preset,
                           command=invocation())
    print_flow_report(report, root)


def reannotate(
    dataset: str = typer.Option(..., "--dataset", help=f"The dataset folder that changed: {', '.join(FORMATS)}."),
    datasets_root: Path = typer.Option(..., "--datasets-root", help="Folder holding the dataset folders."),
    data_root: Path | None = typer.Option(None, "--data-root", help="The data root a full `afford annotate` wrote "
                                                                    "(default: AFFORD_DATA_ROOT)."),
    mano_root: Path | None = typer.Option(None, "--mano-root", help="Folder with MANO_RIGHT.pkl (default: "
                                                                    "<datasets-root>/mano)."),
) -> None:
    """One incremental pass: re-annotate the samples of --dataset whose files changed since the last run."""
    _check_choice("--dataset", dataset, tuple(FORMATS))
    if not (datasets_root / dataset).is_dir():
        _fail(f"--datasets-root {datasets_root}: no folder {dataset}/ inside")
    root = (data_root or AffordSettings().data_root).resolve()
    from flows.reannotate import reannotate as reannotate_flow

    report = reannotate_flow(dataset=dataset, datasets_root=str(datasets_root.resolve()), data_root=str(root),
                             mano_root=str(mano_root) if mano_root else None)
    print_flow_report(report, root, example_table=dataset)
