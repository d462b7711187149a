"""What a new user waits for: a fresh clone's `make setup` and `make demo`, timed separately.

    python -m bench.bench_fresh_clone [--source .] [--workdir /tmp/afford-fresh]
    afford report docs/results/fresh_clone --update README.md

Clones the committed HEAD of `--source` (uncommitted changes are not in a clone) into an empty `--workdir`, runs
`make setup` (the venv and every package, from the package registries; pip's own download cache is whatever
this machine has), then `make demo` (which finds the venv ready and runs `afford demo` on its defaults), with
Prefect's state inside the clone. Writes the wall time of each, their exit codes, and the demo's stage times.
Refuses a `--workdir` that exists and is not empty: it never deletes what it did not make.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[int, float]:
    """(exit code, seconds) of `command`, its output in `log`."""
    start = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return code, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="The repository to clone (its HEAD).")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/afford-fresh"))
    parser.add_argument("--results", type=Path, default=None, help="Default: docs/results/fresh_clone.")
    args = parser.parse_args()
    if args.workdir.exists() and any(args.workdir.iterdir()):
        raise SystemExit(f"--workdir {args.workdir}: exists and is not empty; give a new folder")
    from bench.record import bench_table, finish, load_text, started

    header = started("fresh_clone", seed=0)
    clone = args.workdir / "repo"
    subprocess.run(["git", "clone", "-q", str(args.source), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    env = {**os.environ, "PREFECT_HOME": str(clone / ".prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90", "COLUMNS": "200"}
    env.pop("AFFORD_DATA_ROOT", None)  # the clone's own default data root, as a new user gets
    setup_code, setup_s = timed(["make", "setup"], clone, env, args.workdir / "setup.log")
    demo_code, demo_s = timed(["make", "demo"], clone, env, args.workdir / "demo.log")
    timings = clone / "afford-data" / "reports" / "timings.json"
    stages = json.loads(timings.read_text())["figures"]["stages"] if timings.is_file() else []
    rows = [["make setup", setup_code, setup_s], ["make demo", demo_code, demo_s],
            ["both", max(setup_code, demo_code), setup_s + demo_s]]
    tables = [bench_table(["command", "exit code", "seconds"], rows, ["", "d", ".0f"],
                          heading=f"Fresh clone of {commit[:12]}"),
              bench_table(["demo stage", "seconds"], [[s["stage"], s["seconds"]] for s in stages], ["", ".1f"],
                          heading="Inside `make demo`: stage times")]
    text = [f"A clone of `{commit}` in an empty folder; logs in `{args.workdir}`. {load_text()}."]
    finish(header, "fresh_clone", "Fresh clone: set-up and demo", text, tables, args.results)


if __name__ == "__main__":
    main()
