"""Shard-store throughput and peak memory: write, verified read, validated rows, 1 % upsert, torch dataset.

    python -m bench.bench_table_store --rows 4000 --points 4096 [--rows-per-shard 512] [--out DIR]
    afford report docs/results/table_store --update BENCHMARKS.md

Each phase runs in its own process so its peak RSS (ru_maxrss) is its own. Rows are toy samples with
`--points` object points and 778 hand vertices (about 60 KB of float32 a row at 4096 points).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = ("generate", "write", "read_batches", "read_rows", "torch_dataset", "upsert_1pct_spread_rewrite",
          "upsert_1pct_spread", "upsert_1pct_clustered")


def _rows(n: int, points: int, start: int = 0, intent: str | None = None):
    from tasks.synth.toy_samples import toy_sample

    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        row = toy_sample(i, rng, points)
        row["hand_verts"] = rng.normal(scale=0.03, size=(778, 3)).astype(np.float32)
        row["intent"] = intent
        yield row


def _phase(name: str, table: Path, rows: int, points: int, rows_per_shard: int) -> dict:
    from schemas.rows import Sample
    from tasks.store.read import open_table
    from tasks.store.torch_dataset import TableIterableDataset
    from tasks.store.write import write_table

    start = time.perf_counter()
    if name == "generate":  # the cost of making the toy rows, included in `write`
        count, size = sum(1 for _ in _rows(rows, points)), 0
    elif name == "write":
        manifest = write_table(table, _rows(rows, points), Sample, rows_per_shard=rows_per_shard)
        count, size = manifest.num_rows, sum(s.bytes for s in manifest.shards)
    elif name == "read_batches":
        opened = open_table(table, Sample)
        count = sum(b.num_rows for b in opened.iter_batches(batch_rows=256))
        size = sum(s.bytes for s in opened.manifest.shards)
    elif name == "read_rows":
        count, size = sum(1 for _ in open_table(table, Sample).iter_rows()), 0
    elif name.startswith("upsert_1pct"):
        changed = max(1, rows // 100)
        # spread: one changed row every 100, so every shard holds one (each shard's file is kept with its changed
        # row listed as deleted; with rewrite_share 0 every shard is rewritten, as before deletion lists);
        # clustered: 1 % contiguous rows, so one or two shards are touched and the rest hard-linked.
        spread = "spread" in name
        ids = list(range(0, rows, rows // changed))[:changed] if spread else list(range(changed))
        fresh = [next(_rows(1, points, start=i, intent="changed")) for i in ids]
        manifest = write_table(table, fresh, Sample, rows_per_shard=rows_per_shard,
                               rewrite_share=0.0 if name.endswith("rewrite") else None)
        count, size = changed, manifest.num_rows
    elif name == "torch_dataset":
        dataset = TableIterableDataset(table, Sample, columns=["sample_id", "object_points", "hand_verts"])
        count, size = sum(1 for _ in dataset), 0
    else:
        raise ValueError(f"unknown phase {name!r}; expected one of {PHASES}")
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"phase": name, "rows": count, "seconds": round(seconds, 3), "rows_per_s": round(count / seconds, 1),
            "bytes": size, "peak_rss_mib": round(peak_mib, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--rows-per-shard", type=int, default=512)
    parser.add_argument("--out", type=Path, default=None, help="Directory for the table (default: a temp dir).")
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/table_store).")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rows < 100:
        parser.error(f"--rows must be >= 100 for a 1 % upsert, got {args.rows}")
    if args.phase:
        table = args.out / "samples"
        print(json.dumps(_phase(args.phase, table, args.rows, args.points, args.rows_per_shard)))
        return
    from bench.record import bench_table, finish, load_text, started

    header = started("table_store", seed=None)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        results = []
        for phase in PHASES:
            cmd = [sys.executable, "-m", "bench.bench_table_store", "--phase", phase, "--rows", str(args.rows),
                   "--points", str(args.points), "--rows-per-shard", str(args.rows_per_shard), "--out", str(out)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"phase {phase} failed:\n{done.stderr}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = [[PHASE_WORDS[r["phase"]], r["rows"], r["seconds"], r["rows_per_s"],
             r["bytes"] / r["seconds"] / 2**20 if r["phase"] in ("write", "read_batches") else None,
             r["peak_rss_mib"]] for r in results]
    written = next(r for r in results if r["phase"] == "write")
    text = [f"Each row is a toy `Sample` with {args.points} object points and 778 hand vertices; {args.rows} rows "
            f"come to {written['bytes'] / 2**20:.0f} MiB of zstd Parquet in shards of {args.rows_per_shard} rows. "
            f"Each phase runs in its own process, so its peak RSS is its own (it includes the imported libraries); "
            f"{load_text()}."]
    table = bench_table(["phase", "rows", "seconds", "rows/s", "MiB/s (on disk)", "peak RSS MiB"], rows,
                        ["", "d", ".2f", ".0f", ".1f", ".0f"])
    finish(header, "table_store", "Shard store (write, read, upsert)", text, [table], out=args.results)


PHASE_WORDS = {
    "generate": "generate toy rows (included in write)",
    "write": "write (validate, convert, zstd, sha256, publish)",
    "read_batches": "read record batches (sha256 verified)",
    "read_rows": "read validated pydantic rows",
    "torch_dataset": "torch `TableIterableDataset` (3 columns)",
    "upsert_1pct_spread_rewrite": "upsert 1 % spread, AFFORD_REWRITE_SHARE=0 (1 row in every 100: every shard "
                                  "rewritten)",
    "upsert_1pct_spread": "upsert 1 % spread (1 row in every 100: every shard kept, its changed row listed as "
                          "deleted)",
    "upsert_1pct_clustered": "upsert 1 % clustered (contiguous rows: the shard holding them kept with the rows listed "
                             "as deleted, the rest hard-linked)",
}


if __name__ == "__main__":
    main()
