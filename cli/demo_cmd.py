"""`afford demo`: run the main job on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.flow_report import invocation, print_flow_report
from models.preset_choices import AFFORDANCE_PRESETS, CLASSIFIER_PRESETS
from schemas.settings import AffordSettings


def demo(
    data_root: Path | None = typer.Option(None, help="Where to write tables (default: AFFORD_DATA_ROOT or "
                                                     "./afford-data)."),
    objects_per_category: int = typer.Option(1, min=1, max=100, help="Synthetic objects per category in OakInk, "
                                                                     "GRAB and HO-3D (the unlabelled datasets)."),
    labelled_objects_per_category: int = typer.Option(4, min=1, max=100, help="Synthetic objects per category in "
                                                      "AffordPose, the labelled set the classifier learns from."),
    labelled_grasps_per_part: int = typer.Option(3, min=1, max=100, help="AffordPose grasps per graspable part."),
    epochs: int = typer.Option(50, min=1, max=10_000, help="Classifier training epochs (cycle 0)."),
    max_cycles: int = typer.Option(5, min=1, max=100, help="Self-training cycles at most."),
    queue_size: int = typer.Option(100, min=1, max=10_000, help="Review queue size per cycle."),
    review_overlap: float = typer.Option(0.0, "--review-overlap", min=0.0, max=1.0,
                                         help="Share of each review queue that two reviewers decide, to measure "
                                              "their agreement (e.g. 0.1)."),
    instructions: str = typer.Option("auto", help="Instruction generator: auto (AFFORD_LLM_BASE_URL when set, "
                                                  "else the embedded SmolLM2 server, started and stopped by the "
                                                  "demo), openai (the configured endpoint), or template (no model)."),
    affordance_steps: int = typer.Option(450, min=1, max=1_000_000, help="Affordance-map model training steps."),
    affordance_preset: str = typer.Option(AFFORDANCE_PRESETS.default, help=AFFORDANCE_PRESETS.help()),
    classifier_preset: str = typer.Option(CLASSIFIER_PRESETS.default, help=CLASSIFIER_PRESETS.help()),
    grasp: bool = typer.Option(True, "--grasp/--no-grasp", help="Then train the tiny grasp generator on the "
                                                              "annotated table and evaluate it (Table 9, grasp grid)."),
    seed: int = typer.Option(0, min=0, envvar="AFFORD_SEED", help="Random seed."),
    num_points: int = typer.Option(2048, min=16, max=65536, help="Object surface points per sample."),
) -> None:
    """Run the engine end to end on embedded defaults: synthesise, ingest, render, self-train the affordance
    classifier with a simulated reviewer, write instructions, train the affordance-map model and map the targets;
    print where every table, plot and checkpoint went."""
    if instructions not in ("auto", "openai", "template"):
        typer.echo(f"error: --instructions {instructions!r} is not one of auto, openai, template", err=True)
        raise typer.Exit(2)
    from tasks.instruct.choice import check_endpoint

    check_endpoint(instructions, AffordSettings())
    for option, value, registry in (("--affordance-preset", affordance_preset, AFFORDANCE_PRESETS),
                                    ("--classifier-preset", classifier_preset, CLASSIFIER_PRESETS)):
        if value not in registry:
            typer.echo(f"error: {option} {value!r} is not one of {', '.join(registry.names)}", err=True)
            raise typer.Exit(2)
    from flows.demo import demo as demo_flow

    root = (data_root or AffordSettings().data_root).resolve()
    report = demo_flow(data_root=str(root), objects_per_category=objects_per_category,
                       labelled_objects_per_category=labelled_objects_per_category,
                       labelled_grasps_per_part=labelled_grasps_per_part, seed=seed, num_points=num_points,
                       epochs=epochs, max_cycles=max_cycles, queue_size=queue_size, review_overlap=review_overlap,
                       instructions=instructions,
                       affordance_steps=affordance_steps, affordance_preset=affordance_preset,
                       classifier_preset=classifier_preset, grasp=grasp, command=invocation())
    print_flow_report(report, root)
