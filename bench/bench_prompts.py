"""Prompt versions side by side: the share of rows with model text (not a template fallback), time and requests,
for every registered prompt version asked the same keys through the same endpoint.

    python -m bench.bench_prompts --data-root afford-data --versions instruct-v2 instruct-v3
    afford report docs/results/prompts --update BENCHMARKS.md

The keys are those of a finished demo run's data root (its affordance labels and sample tables: one key per
(object class, affordance, part), k = 3, each row's variant as the instruct stage picks it), asked with no cache.
The embedded endpoint is started once and shared (or `--base-url`/`--model` name a running one); the versions run
one after another with the instruct stage's concurrency, so they never share the cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAMPLE_TABLES = ("affordpose", "oakink", "grab", "ho3d")


def demo_inputs(root: Path) -> list:
    """The instruct stage's inputs for a finished demo run: its labelled samples of the four tables."""
    from schemas.rows import AffordanceLabel
    from tasks.instruct.choice import instruct_inputs
    from tasks.store.read import open_table

    labels_table = root / "tables" / "affordance_labels"
    if not (labels_table / "manifest.json").is_file():
        raise SystemExit(f"--data-root {root}: no tables/affordance_labels; run `afford demo` there first")
    labels = {row.sample_id: row.affordance for row in open_table(labels_table, AffordanceLabel).iter_rows()}
    tables = [root / "tables" / name for name in SAMPLE_TABLES if (root / "tables" / name / "manifest.json").is_file()]
    return list(instruct_inputs(tables, labels))


def version_row(version: str, inputs: list, base_url: str, model: str, k: int, concurrency: int, seed: int) -> dict:
    """Ask every key in `version`'s words; the figures of one table row (and the commonest fallback reasons)."""
    from tasks.instruct.generators import OpenAIGenerator
    from tasks.instruct.stage import instruct_samples

    # The embedded generator's own settings (tasks/instruct/choice.py): 120 tokens, one repair, a long timeout.
    generator = OpenAIGenerator(base_url, model, record_as="bench", max_tokens=120, seed=seed, timeout_s=180.0,
                                prompt_version=version)
    start = time.perf_counter()
    rows, counts = instruct_samples(inputs, generator, None, k=k, concurrency=concurrency)
    seconds = time.perf_counter() - start
    model_rows = sum(not row.fallback for row in rows)
    reasons = Counter(_reason_kind(row.fallback_reason) for row in rows if row.fallback)
    print(f"{version}: {model_rows}/{len(rows)} rows with model text in {seconds:.0f} s", flush=True)
    return {"version": version, "keys": counts.generated, "rows": len(rows), "model_rows": model_rows,
            "share": model_rows / max(len(rows), 1), "seconds": round(seconds, 1), "calls": counts.endpoint_calls,
            "repairs": counts.repairs, "fallback_keys": counts.fallback_keys, "reasons": reasons.most_common(3),
            "examples": sorted({(row.object_class, row.affordance, row.instruction) for row in rows
                                if not row.fallback})[:6]}


def _reason_kind(reason: str | None) -> str:
    """A fallback reason without the quoted answer: "does not name the mug", "not imperative", "1 distinct ..."."""
    text = (reason or "").removeprefix("invalid answer after repair: ")
    return text.rsplit("': ", 1)[-1].split(" (")[0][:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="A finished demo run's data root.")
    parser.add_argument("--versions", nargs="+", default=None, help="Prompt versions (default: every registered).")
    parser.add_argument("--k", type=int, default=3, help="Instructions per key (the instruct stage's default).")
    parser.add_argument("--base-url", default=None, help="Bench a running endpoint instead of starting one.")
    parser.add_argument("--model", default=None, help="Model name for --base-url.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json (default: docs/results/prompts).")
    args = parser.parse_args()
    from tasks.instruct import prompts

    versions = args.versions or sorted(prompts.WORDINGS)
    for version in versions:
        try:
            prompts.wording_for(version)
        except ValueError as error:
            raise SystemExit(f"--versions: {error}") from None
    if args.k < 1:
        raise SystemExit(f"--k must be >= 1, got {args.k}")
    if bool(args.base_url) != bool(args.model):
        raise SystemExit("--base-url and --model go together")
    inputs = demo_inputs(args.data_root)

    from bench.record import bench_table, finish, load_text, started
    from tasks.instruct.choice import EMBEDDED_CONCURRENCY

    header = started("prompts", args.seed)
    if args.base_url:
        endpoint_name = f"{args.base_url} ({args.model})"
        results = [version_row(v, inputs, args.base_url, args.model, args.k, EMBEDDED_CONCURRENCY, args.seed)
                   for v in versions]
    else:
        from tasks.instruct.endpoint import running_endpoint

        with running_endpoint(args.data_root) as endpoint:
            endpoint_name = f"the embedded endpoint ({Path(endpoint.model).name})"
            results = [version_row(v, inputs, endpoint.base_url, endpoint.model, args.k, EMBEDDED_CONCURRENCY,
                                   args.seed) for v in versions]
    rows = [[r["version"], r["keys"], r["rows"], r["model_rows"], 100 * r["share"], r["seconds"], r["calls"],
             r["repairs"], r["fallback_keys"], "; ".join(f"{kind} ({n})" for kind, n in r["reasons"])]
            for r in results]
    table = bench_table(["prompt version", "keys", "rows", "rows with model text", "share %", "seconds",
                         "requests", "repairs", "keys with a fallback", "commonest fallback reasons (rows)"],
                        rows, ["", "d", "d", "d", ".1f", ".1f", "d", "d", "d", ""])
    examples = bench_table(["prompt version", "object", "affordance", "model text"],
                           [[r["version"], *example] for r in results for example in r["examples"]],
                           heading="Model texts (the first few keys in name order)")
    text = [f"The keys of the demo run at `{args.data_root}`: {len(inputs)} labelled samples, k = {args.k}, asked "
            f"through {endpoint_name} with {EMBEDDED_CONCURRENCY} requests in flight, no cache, one repair, "
            f"seed {args.seed}; {load_text()}."]
    finish(header, "prompts", "Prompt versions (instruct stage)", text, [table, examples], out=args.results)


if __name__ == "__main__":
    main()
