"""`afford`: the command line of the AffordGrasp data engine."""

from __future__ import annotations

from cli.env import apply_prefect_defaults

apply_prefect_defaults()

import typer  # noqa: E402

from cli import (  # noqa: E402
    affordance_cmd,
    annotate_cmd,
    demo_cmd,
    evaluate_cmd,
    fit_mano_cmd,
    ingest_cmd,
    inspect_cmd,
    instruct_cmd,
    llm_cmd,
    pseudo_label_cmd,
    render_cmd,
    report_cmd,
    review_cmd,
    sample_cmd,
    server_cmd,
    settings_cmd,
    synth_cmd,
    train_cmd,
    watch_cmd,
)
from cli.errors import guard  # noqa: E402

app = typer.Typer(
    name="afford",
    help="AffordGrasp data engine: annotate hand-object grasp datasets and train a grasp generator on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo_cmd.demo)
app.command("inspect")(inspect_cmd.inspect)
app.command("settings")(settings_cmd.settings)
app.command("synth")(synth_cmd.synth)
app.command("ingest")(ingest_cmd.ingest)
app.command("annotate")(annotate_cmd.annotate)
app.command("reannotate")(annotate_cmd.reannotate)
app.command("render")(render_cmd.render)
app.command("report")(report_cmd.report)
app.command("fit-mano")(fit_mano_cmd.fit_mano)
app.command("pseudo-label")(pseudo_label_cmd.pseudo_label)
app.add_typer(review_cmd.app, name="review")
app.command("instruct")(instruct_cmd.instruct)
app.command("affordance")(affordance_cmd.affordance)
app.add_typer(llm_cmd.app, name="llm")
app.command("watch")(watch_cmd.watch)
app.command("train")(train_cmd.train)
app.command("sample")(sample_cmd.sample)
app.command("evaluate")(evaluate_cmd.evaluate)
app.add_typer(server_cmd.app, name="server")
app.command("deploy")(server_cmd.deploy)
guard(app)  # expected errors as one `error:` line, exit 2 (cli/errors.py): after every command is registered


def main() -> None:
    """The `afford` entry point: the app, with expected errors as one `error:` line (cli/errors.py)."""
    from cli.errors import run

    run(app)


if __name__ == "__main__":
    main()
