"""The fault suite at full count: the crafted-input corpus through the real ingest, and kill -9 trials of a whole
`afford annotate` run, each followed by a re-run compared with an uninterrupted run.

    python -m bench.bench_faults --trials 10 --seed 0 --out docs/results/faults
    afford report docs/results/faults --out docs/results/faults --update BENCHMARKS.md

Writes `<out>/result.json` (provenance and figures); `afford report` renders it into BENCHMARKS.md's `faults`
block. `make test` runs the same checks at a reduced count (tests/faults).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

def corpus_figures(work: Path, seed: int) -> dict:
    """The crafted corpus through the real ingest (tests/faults/corpus.py), as figures."""
    from tests.faults.corpus import FORMATS, MARKER, ingest_corpus, peak_rss_gb

    done = ingest_corpus(work, seed)
    rejects = Counter((r.dataset, r.source) for r in done.rejects)
    crafted = {(c.fmt, c.source) for c in done.corpus}
    per_format = Counter(c.fmt for c in done.corpus)
    return {
        "total": len(done.corpus),
        "exactly_one_reject": sum(rejects[c.fmt, c.source] == 1 for c in done.corpus),
        "good_rejected": sum(n for key, n in rejects.items() if key not in crafted),
        "code_ran": len(list(work.rglob(MARKER))),
        "peak_rss_mb": peak_rss_gb() * 1024,
        "formats": {fmt: {"crafted": per_format[fmt], "rejects": done.counts[fmt].rejects, "good": done.good[fmt],
                          "rows": done.counts[fmt].rows} for fmt in FORMATS},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10, help="kill -9 trials of a whole annotate run")
    parser.add_argument("--seed", type=int, default=0, help="seeds the datasets and the kill moments")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "faults")
    args = parser.parse_args()

    from bench.record import save, started
    from tasks.synth.datasets import synthesize_datasets
    from tests.faults.annotate_kill import run_trials

    console = Console()
    header = started("faults", args.seed)  # read before the run: the code that runs
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        console.print("crafted corpus ...")
        corpus = corpus_figures(work / "corpus", args.seed)
        console.print(f"  {corpus['exactly_one_reject']} of {corpus['total']} crafted inputs: exactly one reject")
        console.print(f"kill -9 trials ({args.trials}) ...")
        # The datasets of the reduced demo (every category), as tests/faults/test_kill_annotate.py uses.
        synthesize_datasets(work / "kill" / "datasets", objects_per_category=1, seed=args.seed, steps=20)
        reference_s, trials = run_trials(work / "kill" / "datasets", work / "kill", args.trials, args.seed)
    figures = {"corpus": corpus, "reference_s": round(reference_s, 1),
               "trials": [asdict(t) | {"lost": t.lost, "extra": t.extra} for t in trials]}
    for trial in figures["trials"]:
        trial["changes"] = {name: list(change) for name, change in trial["changes"].items()}
    save(header, "faults", figures, args.out)


if __name__ == "__main__":
    main()
