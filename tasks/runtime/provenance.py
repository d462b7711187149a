"""Where a result came from: the code version, the libraries that computed it and the machine it ran on.

Written into every table's lineage (code version and libraries) and every run report (all of it), so a figure can
be traced to the commit, seed and machine that produced it.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

# The libraries whose versions change numbers: tensor maths, arrays, the Parquet writer, the orchestrator.
LIBRARIES = ("torch", "numpy", "pyarrow", "scipy", "trimesh", "prefect")
PACKAGE = "affordgrasp-engine"
_REPO = Path(__file__).resolve().parents[2]


@functools.cache
def code_version() -> str:
    """`git:<commit>` (with `+dirty` when tracked files differ from it) when the code runs from a git checkout,
    else `<package>==<version>` of the installed package."""
    try:
        commit = subprocess.run(["git", "-C", str(_REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return f"git:{commit}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout (an installed wheel)
        try:
            return f"{PACKAGE}=={metadata.version(PACKAGE)}"
        except metadata.PackageNotFoundError:
            return "unknown"


@functools.cache
def library_versions() -> dict[str, str]:
    """{library: version} for LIBRARIES and Python; a library that is not installed is left out."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def machine() -> dict[str, object]:
    """The machine in words a reader can compare: OS, CPU model, logical cores, memory (GiB)."""
    cpu = platform.processor() or platform.machine()
    try:  # /proc/cpuinfo names the model where platform.processor() says only "x86_64"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    return {"os": platform.platform(terse=True), "cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib}


def provenance(command: str, seed: int | None) -> dict[str, object]:
    """The header of a run report: command, seed (None: the command draws nothing at random), code version, UTC
    date, machine and library versions."""
    return {"command": command, "seed": seed, "code_version": code_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "libraries": library_versions()}
