"""`afford report`: render a run's figures as Markdown and rewrite the generated blocks of README/BENCHMARKS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer


def report(
    run: Path = typer.Argument(..., help="A data root after `afford demo` / `afford annotate` (its reports/ "
                                         "folder), or a results folder this command wrote (its run.json)."),
    out: Path | None = typer.Option(None, "--out", help="Folder to write run.json (the figures, bundled) and "
                                                        "run.md (the whole report) into."),
    update: list[Path] = typer.Option([], "--update", help="Markdown file whose generated blocks "
                                                           "(<!-- report:NAME:begin -->) to rewrite; repeatable."),
    only: list[str] = typer.Option([], "--block", help="Rewrite (or check) only these generated blocks of the "
                                                      "--update files; repeatable. Default: every block the run "
                                                      "fills."),
    check: bool = typer.Option(False, "--check", help="Change nothing: exit 1 when --out's run.md or a block of "
                                                      "an --update file differs from what the figures render to."),
) -> None:
    """Render a run's figures (the JSON each stage wrote) as Markdown: the whole run into --out, and each
    generated block of the --update files. With --check, say which file is stale instead of writing."""
    from tasks.report.blocks import fill_blocks
    from tasks.report.render import SECTIONS, render_run, render_section
    from tasks.report.run_files import ReportError, read_run, write_bundle

    try:
        bundle = read_run(run)
    except ReportError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    markdown = render_run(bundle)
    missing = [str(p) for p in update if not p.is_file()]
    if missing:
        typer.echo(f"error: --update {', '.join(missing)}: no such file", err=True)
        raise typer.Exit(2)
    known = set(SECTIONS) | ({bundle["kind"]} if "kind" in bundle else set())
    unknown = [name for name in only if name not in known]
    if unknown:
        typer.echo(f"error: --block {', '.join(unknown)}: not a block this run fills (it fills: "
                   f"{', '.join(sorted(known))})", err=True)
        raise typer.Exit(2)

    def section(name: str) -> str | None:
        return render_section(name, bundle) if not only or name in only else None

    if check:
        raise typer.Exit(_check(bundle, markdown, out, update, section))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        name = _stem(bundle)
        if out.resolve() != Path(run).resolve():  # a results folder re-rendered in place keeps its own bundle
            write_bundle(bundle, out, f"{name}.json")
        (out / f"{name}.md").write_text(markdown)
        typer.echo(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")
    for path in update:
        names = fill_blocks(path, section)
        typer.echo(f"{path}: rewrote {', '.join(names) if names else 'no block'} "
                   f"(blocks this run fills: {', '.join(sorted(known))})")
    if out is None and not update:
        typer.echo(markdown)


def _check(bundle: dict, markdown: str, out: Path | None, update: list[Path],
           section: Callable[[str], str | None]) -> int:
    """1 and a line per stale file when a committed rendering differs from the figures; else 0."""
    from tasks.report.blocks import blocks

    stale = []
    name = _stem(bundle)
    if out is not None and (not (out / f"{name}.md").is_file() or (out / f"{name}.md").read_text() != markdown):
        stale.append(f"{out / f'{name}.md'}: differs from what {out / f'{name}.json'} renders to")
    for path in update:
        for name, body in blocks(path.read_text()).items():
            expected = section(name)
            if expected is not None and body.rstrip() != expected.rstrip():
                stale.append(f"{path}: block {name!r} differs from what the run's figures render to")
    for line in stale:
        typer.echo(f"stale: {line}", err=True)
    if not stale:
        typer.echo("up to date: every rendering matches the run's figures")
    return 1 if stale else 0


def _stem(bundle: dict) -> str:
    """The file names a bundle is written under: result.json/.md for a benchmark's, run.json/.md for a run's."""
    return "result" if "kind" in bundle else "run"
