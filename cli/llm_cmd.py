"""`afford llm`: run the embedded OpenAI-compatible LLM endpoint (transformers serve over SmolLM2-135M)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import typer

app = typer.Typer(name="llm", help="The embedded LLM endpoint the instruct stage writes instructions with.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def llm() -> None:
    """The embedded LLM endpoint. (A callback keeps `serve` a subcommand even when this app runs alone.)"""


@app.command("serve")
def serve(
    data_root: Path | None = typer.Option(None, "--data-root", help="Data folder (default: AFFORD_DATA_ROOT "
                                                                    "setting); the model is cached under "
                                                                    "<data_root>/models."),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="TCP port on 127.0.0.1 (0: any free port)."),
    startup_timeout_s: float = typer.Option(180.0, "--startup-timeout", min=1.0,
                                            help="Seconds to wait for the first answer."),
) -> None:
    """Convert the model once (~30 s), serve it on 127.0.0.1 until Ctrl-C, then stop the server."""
    from tasks.instruct.endpoint import ensure_model_dir, start_endpoint, stop_endpoint

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if data_root is None:
        from schemas.settings import AffordSettings

        data_root = AffordSettings().data_root
    try:
        model_dir = ensure_model_dir(data_root)
    except FileNotFoundError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"starting transformers serve over {model_dir} ...")
    endpoint = start_endpoint(model_dir, port=port or None, startup_timeout_s=startup_timeout_s)
    # The SIGTERM handler goes in before "Ctrl-C stops it." is printed: a supervisor that reads that line and
    # stops us at once must find it installed.
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        typer.echo(f"base URL  {endpoint.base_url}\nmodel     {endpoint.model}\nlog       {endpoint.log_path}")
        typer.echo("use it from the engine with:\n" + "\n".join(f"  export {line}" for line in endpoint.env_lines()))
        typer.echo("Ctrl-C stops it.")
        crashed = _wait_for_stop(endpoint.process, stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_endpoint(endpoint)
        typer.echo("stopped")
    if crashed:
        typer.echo(f"error: the server exited with code {endpoint.process.returncode}; see {endpoint.log_path}",
                   err=True)
        raise typer.Exit(1)


def _wait_for_stop(process, stop: threading.Event) -> bool:
    """Block until Ctrl-C or `stop` (set on SIGTERM) (False), or the server exits by itself (True)."""
    try:
        while not stop.is_set() and process.poll() is None:
            stop.wait(1.0)
    except KeyboardInterrupt:
        stop.set()
    return not stop.is_set() and process.poll() is not None
