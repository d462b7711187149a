"""`afford watch`: emit a `dataset.changed` Prefect event when files of a dataset are added, changed or removed."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer


def watch(
    root: Path = typer.Argument(..., help="Folder holding the dataset folders (affordpose/, oakink/, grab/, ho3d/)."),
    state: Path | None = typer.Option(None, "--state", help="Folder of the hash manifests, one JSON per dataset "
                                                            "(default: <data_root>/watch, AFFORD_DATA_ROOT)."),
    datasets: list[str] | None = typer.Option(None, "--dataset", help="Dataset folder under ROOT to watch; repeat "
                                                                      "for each. Default: every one of affordpose, "
                                                                      "oakink, grab, ho3d that exists."),
    once: bool = typer.Option(False, "--once", help="Check once, print one line per dataset, and exit."),
    interval: float = typer.Option(30.0, "--interval", min=1.0, help="Seconds between checks."),
    baseline_emits: bool = typer.Option(False, "--baseline-emits", help="A dataset seen for the first time emits "
                                                                        "an event listing all its files as added "
                                                                        "(default: record it silently)."),
) -> None:
    """Hash every file of each dataset and emit a `dataset.changed` event (resource afford.dataset.<name>) for
    each dataset whose files changed since the last check; a deployment trigger re-annotates from it.

    Events go to PREFECT_API_URL, at least once: a manifest is saved only after its event is sent.
    """
    if not root.is_dir():
        typer.echo(f"error: ROOT {root} is not a directory", err=True)
        raise typer.Exit(2)
    state_dir = state if state is not None else _default_state_dir()
    try:
        _check_datasets(root, datasets)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not once:
        typer.echo(f"watching {root.resolve()} every {interval:g} s (manifests in {state_dir.resolve()}); "
                   f"Ctrl-C to stop")
    try:
        with _sigterm_as_interrupt():
            _tick(root, state_dir, datasets, baseline_emits, quiet=not once)
            while not once:
                time.sleep(interval)  # a signal handler that raises ends the sleep at once (PEP 475)
                _tick(root, state_dir, datasets, baseline_emits, quiet=True)
    except KeyboardInterrupt:
        typer.echo("stopped")
    except (ValueError, RuntimeError, OSError) as exc:  # corrupt manifest, unreadable file, no events API
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _data_root() -> Path:
    from schemas.settings import AffordSettings

    return AffordSettings().data_root


def _default_state_dir() -> Path:
    from schemas.data_root import DataRoot

    return DataRoot(_data_root()).watch


def _check_datasets(root: Path, datasets: Sequence[str] | None) -> None:
    """Bad --dataset names fail before the first scan, as usage errors (exit 2)."""
    from tasks.ingest.formats import FORMATS
    from tasks.ingest.watch import dataset_names

    if not dataset_names(root, datasets):
        typer.echo(f"warning: no dataset folder ({', '.join(FORMATS)}) under {root} yet", err=True)


def _tick(root: Path, state_dir: Path, datasets: Sequence[str] | None, baseline_emits: bool, quiet: bool) -> None:
    """One check: scan, emit the changes, then save the manifests (so a failed emit is retried next time)."""
    from tasks.ingest.watch import commit, detect, emit_changes

    scanned = detect(root, state_dir, datasets, baseline_emits)
    changes = [s.change for s in scanned if not s.change.empty]
    if changes:
        _warn_without_api()
    ids = iter(emit_changes(changes, data_root=str(_data_root().absolute())))
    commit(state_dir, scanned)
    for item in scanned:
        change = item.change
        if not change.empty:
            counts = change.payload()["counts"]
            typer.echo(f"{change.dataset}: {counts['added']} added, {counts['changed']} changed, "
                       f"{counts['removed']} removed -> event {next(ids)}")
        elif item.baseline:
            typer.echo(f"{change.dataset}: baseline recorded ({len(item.files)} files)")
        elif not quiet:
            typer.echo(f"{change.dataset}: unchanged")


def _warn_without_api() -> None:
    """Without PREFECT_API_URL Prefect sends events to a temporary in-process API that no trigger watches."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        typer.echo("warning: PREFECT_API_URL is not set: events go to a temporary local Prefect API and no "
                   "deployment trigger will see them (start `prefect server start` and set PREFECT_API_URL)",
                   err=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, docker stop, a Prefect worker) stops the loop like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers live in the main thread
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
