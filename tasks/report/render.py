"""A run's figures (run_files.py's JSON) as Markdown: the one renderer behind the flows' Prefect artifacts,
`afford report`, and the run tables README.md and BENCHMARKS.md include. Pure functions of the JSON: the same
files always render the same text.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tasks.affordance.metrics import MetricSummary, metrics_table, overall_table
from tasks.instruct.report import escape_markdown
from tasks.instruct.stage import InstructCounts
from tasks.pseudo_label.confidence_filter import ClassRow, ClassStats, RuleReport
from tasks.pseudo_label.label_quality import Interval
from tasks.pseudo_label.report import class_stats_table, markdown_table, rule_table, summary_table
from tasks.pseudo_label.self_training import CycleRecord, cycle_table
from tasks.report.run_files import BENCH_KINDS, EXTRA_STAGES, STAGES
from tasks.store.annotated_join import JoinCounts
from tasks.store.inspect import human_bytes

TITLES = {"ingest": "Ingest", "self_training": "Self-training", "instructions": "Instructions",
          "affordance": "Affordance maps", "annotated": "Annotated", "fit_mano": "MANO fits (`afford fit-mano`)",
          "timings": "Wall time per stage"}


def render_run(bundle: dict[str, Any]) -> str:
    """The whole run: the provenance header, then every stage in order (a skipped stage says why), then the
    commands run on its tables afterwards (fit-mano) where the run has their figures."""
    if bundle.get("kind") in BENCH_RENDERERS:
        return f"{render_provenance(bundle['provenance'])}\n\n{BENCH_RENDERERS[bundle['kind']](bundle['figures'])}\n"
    parts = [render_provenance(bundle["provenance"])]
    for stage in STAGES + tuple(s for s in EXTRA_STAGES if s in bundle["stages"]):
        figures = bundle["stages"][stage]
        parts.append(f"## {TITLES[stage]} skipped\n\n{figures['skipped']}" if "skipped" in figures
                     else RENDERERS[stage](figures))
    return "\n\n".join(parts) + "\n"


def render_section(name: str, bundle: dict[str, Any]) -> str | None:
    """The body of the generated block `name` (blocks.py) from a run's bundle; None for a name that is not a run
    section. Each section starts with the provenance line, so a block always says which run it shows."""
    if bundle.get("kind") in BENCH_RENDERERS:  # a benchmark's result fills the one block named after its kind
        if name != bundle["kind"]:
            return None
        return f"{render_provenance(bundle['provenance'])}\n\n{_demote(BENCH_RENDERERS[name](bundle['figures']))}"
    if name not in SECTIONS:
        return None
    if name in EXTRA_SECTIONS:
        stage, remedy = EXTRA_SECTIONS[name]
        if stage not in bundle["stages"]:
            return f"{render_provenance(bundle['provenance'])}\n\nThis run has no {TITLES[stage]} figures: {remedy}"
    return f"{render_provenance(bundle['provenance'])}\n\n{SECTIONS[name](bundle['stages'])}"


def _summary_section(stages: dict[str, Any]) -> str:
    """The run in brief (README): ingest, the classifier's accuracy and rules, the cycles, counts of the rest."""
    parts = []
    for stage in STAGES:
        f = stages[stage]
        if "skipped" in f:
            parts.append(f"**{TITLES[stage]} skipped.** {f['skipped']}")
        elif stage == "self_training":
            parts.append(render_self_training(f, per_class=False))
        elif stage == "instructions":
            parts.append(f"## Instructions\n\n{InstructCounts(**f['counts']).summary()}")
        elif stage == "affordance":
            parts.append(render_affordance(f, per_group=False))
        else:
            parts.append(RENDERERS[stage](f))
    return _demote("\n\n".join(parts))


def _demote(markdown: str) -> str:
    """Headings two levels down: a section sits inside a document's own "## ..." section."""
    return re.sub(r"^(#{2,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", markdown, flags=re.MULTILINE)


def render_provenance(p: dict[str, Any]) -> str:
    """One paragraph: what produced the figures below (command, seed, code, date, machine, libraries)."""
    m = p["machine"]
    seed = "no random draws" if p["seed"] is None else f"seed {p['seed']}"
    memory = f", {m['memory_gib']:g} GiB" if m.get("memory_gib") else ""
    libraries = ", ".join(f"{name} {version}" for name, version in p["libraries"].items())
    return (f"Run: `{p['command']}` ({seed}), code `{p['code_version']}`, {p['date']}; machine: "
            f"{m['cpu']}, {m['cores']} logical cores{memory}, {m['os']}; {libraries}.")


def render_ingest(f: dict[str, Any]) -> str:
    rows = [[d["dataset"], d["inputs"], d["rows"], d["rejects"], d["shards"], human_bytes(d["bytes"])]
            for d in f["datasets"]]
    total = (f"{sum(d['inputs'] for d in f['datasets'])} inputs = {sum(d['rows'] for d in f['datasets'])} rows + "
             f"{sum(d['rejects'] for d in f['datasets'])} rejects.")
    parts = ["## Ingest", markdown_table(["dataset", "inputs", "rows", "rejects", "shards", "size"], rows), total]
    if f["rejects"]:
        parts.append("Rejects:\n\n" + "\n".join(f"- {r['dataset']}: {escape_markdown(r['reason'], 300)}"
                                                for r in f["rejects"]))
    return "\n\n".join(parts)


def render_classifier(c: dict[str, Any], per_class: bool = True) -> str:
    """Cycle 0: accuracy per split, both rules on the held-out test split (per predicted class too, and the
    class-conditional statistics with n per class, unless per_class is False), the default rule."""
    reports = {name: RuleReport(**{**r, "per_class": [ClassRow(**row) for row in r["per_class"]]})
               for name, r in c["rules"].items()}
    parts = ["## Classifier (cycle 0, AffordPose only)", summary_table(c["split_accuracy"]),
             "Confidence rules on the held-out test split (treated as unlabelled):",
             rule_table(reports) if per_class else rule_table(reports).split("\n\n")[0],
             f"Default rule: **{c['rule']}**. {c['reason']}"]
    if per_class and c["class_stats"] is not None:
        s = c["class_stats"]
        stats = ClassStats(mean=np.asarray(s["mean"]), std=np.asarray(s["std"]), count=np.asarray(s["count"]),
                           fallback=np.asarray(s["fallback"]), pooled_mean=s["pooled_mean"],
                           pooled_std=s["pooled_std"], k=s["k"])
        parts += ["Class-conditional statistics (fitted on the correct validation predictions; a class with too "
                  "few uses the pooled ones):", class_stats_table(stats)]
    return "\n\n".join(parts)


def render_self_training(f: dict[str, Any], per_class: bool = True) -> str:
    records = [CycleRecord(**{k: v for k, v in r.items() if k not in ("reviewed_low", "reviewed_high")}
                           | {"reviewed_accuracy": None if r["reviewed_accuracy"] is None else
                              Interval(r["reviewed_accuracy"], r["reviewed_low"], r["reviewed_high"])})
               for r in f["cycles"]]
    o, pool = f["origins"], f["pool"]
    coverage = (f"{f['labelled']} of {pool} target samples labelled ({100 * f['labelled'] / max(pool, 1):.1f} % "
                f"coverage): {o['validated']} validated, {o['relabelled']} relabelled by a reviewer, "
                f"{o['low_confidence']} low_confidence (never accepted; the last model's label).")
    classifier = [render_classifier(f["classifier"], per_class)] if f["classifier"] else []
    return "\n\n".join([*classifier, "## Self-training", cycle_table(records), coverage])


def render_instructions(f: dict[str, Any]) -> str:
    rows = [[escape_markdown(e["object_class"]), escape_markdown(e["affordance"]), escape_markdown(e["instruction"]),
             escape_markdown(e["generator"]), "yes" if e["fallback"] else ""] for e in f["examples"]]
    # escape_markdown already escaped the pipes; markdown_table would escape them again
    table = "\n".join(["| object | affordance | instruction | generator | fallback |",
                       "| --- | --- | --- | --- | --- |", *("| " + " | ".join(r) + " |" for r in rows)])
    counts = InstructCounts(**f["counts"])
    share = (f" {counts.fallback_samples} of {counts.rows} rows ({100 * counts.fallback_samples / counts.rows:.1f} %) "
             f"fell back to a template wording." if counts.rows else "")
    return "\n\n".join(["## Instructions", counts.summary() + share, table])


def render_affordance(f: dict[str, Any], per_group: bool = True) -> str:
    """Held-out metrics (overall; per object class and per action unless per_group is False) and inference."""
    m = f["metrics"]
    how = "trained" if f["trained"] else "loaded"
    parts = ["## Affordance maps",
             f"Model sha256 {f['checkpoint_sha256'][:12]} ({how}). Items: {f['n_train']} train, {f['n_test']} test "
             f"(objects held out of training), each test item with every instruction of its key."]
    if m["per_class"]:
        overall = _summary(m["overall"])
        parts += ["### Overall", overall_table(overall)]
        if per_group:
            parts += ["### Per object class (layout of Table 7)", metrics_table(_groups(m["per_class"])),
                      "### Per action (layout of Table 8)", metrics_table(_groups(m["per_action"]), overall=overall)]
    else:
        parts.append("No held-out objects to evaluate on: a class needs at least two objects for one to be held out.")
    parts.append(f"Mapped {f['mapped']} target samples; {f['unlabelled']} without an instruction (no label) were not "
                 f"mapped; {f['rejected']} rejected.")
    return "\n\n".join(parts)


def render_annotated(f: dict[str, Any]) -> str:
    return f"## Annotated\n\n{JoinCounts(**f).summary()}."


def render_fit_mano(f: dict[str, Any]) -> str:
    """`afford fit-mano`'s provenance, the error and contact-IoU quantiles, and how many fits are usable."""
    rows = [[name, *(f"{f[key][q]:.2f}" for q in ("min", "median", "p90", "max"))]
            for name, key in (("mean error per hand (mm)", "mean_mm"), ("max error per hand (mm)", "max_mm"),
                              ("contact IoU, fit vs dataset hand (5 mm)", "contact_iou"))]
    per_hand = f["seconds"] / max(f["hands"], 1)
    return "\n\n".join([
        f"## {TITLES['fit_mano']}", render_provenance(f["provenance"]),
        f"{f['hands']} hands fitted ({f['steps']} steps each; {f['skipped_mano']} rows already MANO) in "
        f"{f['seconds']:.0f} s ({per_hand:.1f} s per hand). Error: distance from each vertex of the dataset's hand "
        f"mesh to the fitted MANO surface.",
        markdown_table(["", "min", "median", "p90", "max"], rows),
        f"{f['usable']} of {f['hands']} fits have a mean error at or under {f['usable_mm']:g} mm and join the "
        f"annotated table with MANO parameters."])


def render_faults(f: dict[str, Any]) -> str:
    """bench/bench_faults.py: the crafted-input corpus (inputs, rejects, good rows kept) and the kill -9 trials of
    a whole annotate run (when each was killed, lost and extra rows after the re-run)."""
    c = f["corpus"]
    corpus_rows = [[fmt, d["crafted"], d["rejects"], d["good"], d["rows"]] for fmt, d in c["formats"].items()]
    trials = [[t["index"], f"{t['kill_after_s']:.1f}", "yes" if t["finished_before_kill"] else "",
               t["rerun_rc"], t["lost"], t["extra"]] for t in f["trials"]]
    lost, extra = sum(t["lost"] for t in f["trials"]), sum(t["extra"] for t in f["trials"])
    return "\n\n".join([
        "## Fault suite",
        "### Crafted inputs",
        f"{c['total']} crafted bad inputs (tests/faults/corpus.py) beside the good files of four synthetic datasets, "
        f"through the real ingest: {c['exactly_one_reject']} of {c['total']} ended as exactly one reject naming "
        f"their file; {c['good_rejected']} good files rejected; pickles that ran code: {c['code_ran']}; peak RSS "
        f"{c['peak_rss_mb']:.0f} MB.",
        markdown_table(["format", "crafted", "rejects", "good inputs", "rows"], corpus_rows),
        "### kill -9 of a whole annotate run",
        f"{len(f['trials'])} trials: the run's process group killed at a seeded moment drawn from the uninterrupted "
        f"run's {f['reference_s']:.0f} s, then the same command re-run to the end and every table compared with the "
        f"uninterrupted run's, rows without their wall-clock columns: {lost} rows lost, {extra} extra (duplicated "
        f"or changed).",
        markdown_table(["trial", "killed after (s)", "had finished", "re-run exit", "rows lost", "rows extra"],
                       trials)])


def render_bench_tables(f: dict[str, Any]) -> str:
    """A benchmark's measured tables (bench/record.py): its title, its paragraphs (written by the bench from the
    run's own figures) and tables whose raw cells are formatted by each column's format spec ("" = as is)."""
    parts = [f"## {f['title']}", *f.get("text", [])]
    for table in f["tables"]:
        if table.get("heading"):
            parts.append(f"### {table['heading']}")
        formats = table.get("formats") or [""] * len(table["columns"])
        parts.append(markdown_table(table["columns"], [[_cell(value, spec) for value, spec in zip(row, formats,
                                                                                                    strict=True)]
                                                       for row in table["rows"]]))
        parts.extend(table.get("notes", []))
    return "\n\n".join(parts)


def _cell(value: Any, spec: str) -> str:
    """None is an empty cell; a number takes the column's format spec; anything else is its text."""
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and spec:
        return format(value, spec)
    return str(value)


def _summary(plain: dict[str, Any]) -> MetricSummary:
    values = {k: v for k, v in plain.items() if k not in ("n", "counts")}
    return MetricSummary(values=values, counts=plain["counts"], n=plain["n"])


def _groups(groups: dict[str, Any]) -> dict[str, MetricSummary]:
    return {name: _summary(plain) for name, plain in groups.items()}


def render_timings(f: dict[str, Any]) -> str:
    """Seconds per stage in the order they finished, with each one's share of their sum."""
    total = sum(s["seconds"] for s in f["stages"]) or 1.0
    rows = [[s["stage"], f"{s['seconds']:.1f}", f"{100 * s['seconds'] / total:.1f}"] for s in f["stages"]]
    rows.append(["all stages", f"{total:.1f}", "100.0"])
    return "\n\n".join(["## Wall time per stage", markdown_table(["stage", "seconds", "share %"], rows)])


RENDERERS = {"ingest": render_ingest, "self_training": render_self_training, "instructions": render_instructions,
             "affordance": render_affordance, "annotated": render_annotated, "fit_mano": render_fit_mano,
             "timings": render_timings}
BENCH_RENDERERS = {kind: render_bench_tables for kind in BENCH_KINDS} | {"faults": render_faults}
# Sections drawn from a stage a run may lack (EXTRA_STAGES): the block then says the figures are missing.
EXTRA_SECTIONS = {"demo-fit-mano": ("fit_mano", "run the command on its tables, then `afford report` again."),
                  "demo-timings": ("timings", "the run predates the stage clock; a new `afford demo` records them.")}
SECTIONS = {
    "demo-summary": _summary_section,
    "demo-classifier": lambda stages: _demote(render_classifier(stages["self_training"]["classifier"])),
    "demo-self-training": lambda stages: _demote(render_self_training({**stages["self_training"], "classifier": None})),
    "demo-instructions": lambda stages: _demote(render_instructions(stages["instructions"])),
    "demo-affordance": lambda stages: _demote(render_affordance(stages["affordance"])),
    "demo-fit-mano": lambda stages: _demote(render_fit_mano(stages["fit_mano"])),
    "demo-timings": lambda stages: _demote(render_timings(stages["timings"])),
}
