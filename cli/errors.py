"""Expected errors as one `error:` line and exit code 2, not a traceback.

Expected: a bad setting (named by its environment variable), a path that is missing or of the wrong kind, a table
that is not what the command reads, a refused value (the project's ValueErrors name it), an endpoint that refuses
the key or the model. Anything else is a bug and keeps its traceback. `--debug` (anywhere on the command line) or
AFFORD_DEBUG=1 shows the traceback of an expected error too.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence

import typer
from pydantic import ValidationError

DEBUG_ENV = "AFFORD_DEBUG"
DEBUG_FLAG = "--debug"
EXIT_EXPECTED = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def settings_errors(error: ValidationError) -> list[str]:
    """One line per bad setting: `AFFORD_<NAME>=<value>: <why>`."""
    lines = []
    for item in error.errors():
        name = "AFFORD_" + "_".join(str(part) for part in item["loc"]).upper()
        lines.append(f"{name}={item.get('input')!r}: {item['msg']}")
    return lines


def describe(exc: BaseException) -> str | None:
    """The one-line message of an expected error, or None for an unexpected one (a bug: keep the traceback)."""
    from tasks.instruct.generators import EndpointConfigError
    from tasks.report.run_files import ReportError
    from tasks.store.errors import TableError

    if isinstance(exc, ValidationError):
        if exc.title == "AffordSettings":
            return "; ".join(settings_errors(exc))
        return f"{exc.title}: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, (TableError, ReportError, EndpointConfigError, ValueError, OSError)):
        return str(exc) or type(exc).__name__
    return None


def debug_requested(argv: Sequence[str]) -> bool:
    """--debug on the command line, or AFFORD_DEBUG set to anything but 0/false/no."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def guard(app: typer.Typer) -> typer.Typer:
    """Wrap every command of `app` (and of its sub-apps) so an expected error becomes one `error:` line and
    exit code 2 wherever the app is invoked from (the `afford` script, `python -m`, a test's CliRunner)."""
    for info in app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "_guarded", False):
            info.callback = _guarded(info.callback)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            guard(group.typer_instance)
    return app


def _guarded(command: Callable[..., object]) -> Callable[..., object]:
    @functools.wraps(command)  # typer reads the options from the wrapped signature
    def call(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            # The stages' `finally` blocks have run by now: the embedded endpoint, the review server and the
            # temporary Prefect server are stopped, and tables keep only what was published whole.
            typer.echo("interrupted (Ctrl-C): stopped, with the child processes this command started; "
                       "run the same command again to go on", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            message = describe(exc)
            if message is None or debug_requested(sys.argv):
                raise
            typer.echo(f"error: {message}", err=True)
            typer.echo(f"(run with {DEBUG_FLAG} or {DEBUG_ENV}=1 for the traceback)", err=True)
            raise typer.Exit(EXIT_EXPECTED) from None
    call._guarded = True  # type: ignore[attr-defined]
    return call


def run(app: Callable[..., object], argv: Sequence[str] | None = None) -> None:
    """Run the Typer `app` (its commands guarded) on argv (default: sys.argv[1:]): take `--debug` from anywhere
    on the line, and check the AFFORD_* settings before any command starts."""
    args = list(sys.argv[1:] if argv is None else argv)
    if DEBUG_FLAG in args:  # the commands' guard reads the environment: --debug anywhere sets it
        os.environ[DEBUG_ENV] = "1"
        args = [a for a in args if a != DEBUG_FLAG]
    if not debug_requested(args) and args and args[0] not in ("settings", "--help") and not _check_settings():
        raise SystemExit(EXIT_EXPECTED)
    from tasks.runtime.interrupt import install

    install()  # a Ctrl-C is remembered too, so one swallowed by library code still stops the run
    app(args=args, prog_name="afford")


def _check_settings() -> bool:
    """Read the settings once before any command runs, so a bad AFFORD_* variable is named, not met deep
    inside a flow. False (after printing each bad variable) when they do not validate."""
    from schemas.settings import AffordSettings

    try:
        AffordSettings()
    except ValidationError as exc:
        for line in settings_errors(exc):
            typer.echo(f"error: {line}", err=True)
        typer.echo("(see `afford settings` for every variable and its bounds)", err=True)
        return False
    return True
