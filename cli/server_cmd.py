"""`afford server up|down` (a local Prefect server and process worker) and `afford deploy` (prefect.yaml)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(name="server", help="A local Prefect server and process worker, in the background.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _state() -> Path:
    """PREFECT_HOME (the Makefile sets ./.prefect): server and worker logs and PID files go there."""
    from tasks.runtime.prefect_server import prefect_env

    return Path(prefect_env()["PREFECT_HOME"])


@app.command("up")
def up(port: int = typer.Option(4200, "--port", min=1, max=65535, help="Port on 127.0.0.1."),
       pool: str = typer.Option("afford-process", "--pool", help="Process work pool the worker polls."),
       worker: bool = typer.Option(True, "--worker/--no-worker", help="Also start a process worker."),
       timeout_s: float = typer.Option(120, "--timeout", min=5, help="Seconds to wait for the server.")) -> None:
    """Start `prefect server start` on 127.0.0.1 and a process worker; print the PREFECT_API_URL to export."""
    from tasks.runtime.prefect_server import api_url, ensure_pool, start_server, start_worker

    state = _state()
    if (state / "server.pid").is_file():
        typer.echo(f"error: {state / 'server.pid'} exists: a server started here may be running "
                   f"(`afford server down` first)", err=True)
        raise typer.Exit(1)
    try:
        server = start_server(state, port, timeout_s)
        api = api_url(port)
        typer.echo(f"Prefect server pid {server.pid} at {api} (UI http://127.0.0.1:{port}; log {server.log})")
        if worker:
            ensure_pool(api, pool)
            started = start_worker(state, api, pool)
            typer.echo(f"process worker pid {started.pid} on pool {pool} (log {started.log})")
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"use it with:\n  export PREFECT_API_URL={api}")


@app.command("down")
def down() -> None:
    """Stop the worker and server that `afford server up` started (by their recorded PIDs only)."""
    from tasks.runtime.prefect_server import stop_recorded

    state = _state()
    worker = stop_recorded(state, "worker", signals=2)  # a process worker stops on its second SIGTERM
    server = stop_recorded(state, "server")
    if worker is None and server is None:
        typer.echo(f"nothing to stop: no PID files in {state}")
        return
    typer.echo(" ".join(f"{name} (pid {pid}) stopped." for name, pid in (("worker", worker), ("server", server))
                        if pid is not None))


def deploy(pool: str = typer.Option("afford-process", "--pool", help="Process work pool to create if missing."),
           ) -> None:
    """Create the work pool and deploy every deployment of prefect.yaml (`prefect deploy --all --no-prompt`)
    to the server PREFECT_API_URL names."""
    from tasks.runtime.prefect_server import deploy_all

    api = os.environ.get("PREFECT_API_URL")
    if not api:
        typer.echo("error: PREFECT_API_URL is not set: start a server (`afford server up`) and export the URL it "
                   "prints, or point it at your Prefect server", err=True)
        raise typer.Exit(2)
    try:
        output = deploy_all(api, pool)
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(output.rstrip())
    typer.echo(f"deployed prefect.yaml to {api} (pool {pool}); start a worker: prefect worker start --pool {pool}")
