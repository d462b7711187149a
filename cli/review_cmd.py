"""`afford review`: serve the review web app, and resume a paused flow with a finished review by hand."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from pathlib import Path

import typer

from schemas.data_root import DataRoot
from schemas.review import ReviewResult

app = typer.Typer(name="review", help="The human review queue: serve the web app people review pseudo-labels in.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

TOKEN_ENV = "AFFORD_REVIEW_TOKEN"


def review_paths(data_root: Path | None, store: Path | None = None, images: Path | None = None) -> tuple[Path, Path]:
    """(store, images) paths: given ones win, else `<data_root>/review/review.sqlite` and `<data_root>/review/images`
    with data_root from the settings (AFFORD_DATA_ROOT) when not given."""
    if data_root is None and (store is None or images is None):
        from schemas.settings import AffordSettings

        data_root = AffordSettings().data_root
    layout = DataRoot(data_root or Path("."))
    return store or layout.review_store, images or layout.review_images


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1); any other name or address is reachable
    from elsewhere (0.0.0.0 and :: are every interface)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to a public interface
        return False


@app.command("serve")
def serve(
    data_root: Path | None = typer.Option(None, "--data-root", help="Data folder (default: AFFORD_DATA_ROOT setting)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on. Anything but loopback needs "
                                                         "--token."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    token: str | None = typer.Option(None, "--token", envvar=TOKEN_ENV,
                                     help=f"Shared secret every request must carry (Bearer header or ?token=). "
                                          f"Prefer the {TOKEN_ENV} variable: a command line is visible to "
                                          f"every user of the machine."),
    store: Path | None = typer.Option(None, "--store", help="Review store (default: "
                                                            "<data_root>/review/review.sqlite)."),
    images: Path | None = typer.Option(None, "--images", help="Pictures folder (default: <data_root>/review/images)."),
    allow_host: list[str] = typer.Option([], "--allow-host", metavar="HOST",
                                         help="A host name reviewers reach the server by, besides loopback names "
                                              "and the bound address."),
) -> None:
    """Serve the review page and its JSON API. A finished queue resumes the flow run paused for its cycle."""
    if token is not None and not token.strip():
        typer.echo("error: --token is empty", err=True)
        raise typer.Exit(2)
    if not is_loopback(host) and token is None:
        typer.echo(f"error: --host {host} is not a loopback address, so anyone who can reach this machine could "
                   f"review; give --token (or set {TOKEN_ENV}) as well, or use --host 127.0.0.1", err=True)
        raise typer.Exit(2)
    import uvicorn

    from review.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store_path, images_dir = review_paths(data_root, store, images)
    web = create_app(store_path, images_dir, token=token, on_complete=_resumer(store_path),
                     allowed_hosts=[host, *allow_host])
    shown_host = f"[{host}]" if ":" in host else host
    typer.echo(f"review store {store_path.resolve()}, pictures {images_dir.resolve()}")
    typer.echo(f"review at http://{shown_host}:{port}/" + ("?token=<your token>" if token else ""))
    # The access log shows request paths without their query (review.guard): the page's ?token= stays out of it.
    uvicorn.run(web, host=host, port=port, log_level="info")


def _resumer(store_path: Path) -> Callable[[int, ReviewResult], None]:
    """on_complete for the web app: resume the paused flow run of the cycle (see review.resume)."""
    def on_complete(cycle: int, result: ReviewResult) -> None:
        from review.resume import resume_review_flow

        resume_review_flow(store_path, cycle, result)
    return on_complete


# ignore_unknown_options: "-1" reaches CYCLE (and is refused by its bound) instead of being read as an option
@app.command("resume", context_settings={"ignore_unknown_options": True})
def resume(
    cycle: int = typer.Argument(..., min=0, help="The cycle whose finished review to hand to its flow run."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Data folder (default: AFFORD_DATA_ROOT setting)."),
    store: Path | None = typer.Option(None, "--store", help="Review store (default: "
                                                            "<data_root>/review/review.sqlite)."),
) -> None:
    """Resume the flow run paused for CYCLE with its review, e.g. when the server stopped before it could."""
    from review.resume import resume_review_flow
    from review.store import ReviewStore

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    store_path, _ = review_paths(data_root, store, Path("."))
    review_store = ReviewStore(store_path)
    try:
        progress = review_store.progress(cycle)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(1) from None
    if not progress.complete:
        typer.echo(f"error: cycle {cycle} is not fully reviewed ({progress.decided} of {progress.total} decided)",
                   err=True)
        raise typer.Exit(1)
    resumed = resume_review_flow(store_path, cycle, review_store.result(cycle))
    typer.echo(f"cycle {cycle}: flow run {'resumed' if resumed else 'not resumed (see the log above)'}")
    raise typer.Exit(0 if resumed else 1)


if __name__ == "__main__":  # `python -m cli.review_cmd serve ...`: what review.simulated starts
    from cli.env import apply_prefect_defaults

    apply_prefect_defaults()
    app()


@app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="Parquet file to write (replaced only if it is an earlier export)."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Data folder (default: AFFORD_DATA_ROOT setting)."),
    store: Path | None = typer.Option(None, "--store", help="Review store (default: "
                                                            "<data_root>/review/review.sqlite)."),
    cycle: list[int] = typer.Option([], "--cycle", min=0, help="Only this cycle (repeatable; default: all)."),
) -> None:
    """Write the audit trail (every decision and undo, with its item) as one Parquet file for analysis."""
    from review.export import write_trail
    from review.store import ReviewStore

    store_path, _ = review_paths(data_root, store, Path("."))
    if not store_path.is_file():
        typer.echo(f"error: review store {store_path}: no such file", err=True)
        raise typer.Exit(1)
    try:
        rows = write_trail(ReviewStore(store_path), out, cycle or None)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(1) from None
    except (FileExistsError, IsADirectoryError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{rows} decision rows from {store_path} written to {out}")
