"""The dataset-format registry: one entry per format, read by ingest, watch, annotate, re-annotation and synth.

A format is a codec module (how its files are read, and written where the project can write them) plus one
`DatasetFormat` entry. The built-in four are registered below; a format of your own is registered from your
module with `register_format(...)`, and listed in AFFORD_FORMAT_PLUGINS (comma-separated importable modules) so
that every command (`afford ingest --format NAME`, `afford watch`, `afford annotate`) knows it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.rows import Reject
from tasks.ingest.affordpose import affordpose_sources, iter_affordpose, write_affordpose
from tasks.ingest.common import GraspRecord, RawSample, Unchanged
from tasks.ingest.grab import grab_sources, iter_grab, write_grab
from tasks.ingest.ho3d import ho3d_sources, iter_ho3d, write_ho3d
from tasks.ingest.mano_frame import HandTemplate
from tasks.ingest.oakink import iter_oakink, oakink_sources, write_oakink

PLUGINS_ENV = "AFFORD_FORMAT_PLUGINS"

# read(root, template, frame_step) -> the dataset's samples (canonical frame) and per-file rejects
Reader = Callable[[Path, HandTemplate, int], Iterable[RawSample | Reject]]
# read_known(root, template, frame_step, known) -> the same, except that a sample whose content hash is
# known[sample_id] may come as Unchanged without being parsed (incremental ingest)
KnownReader = Callable[[Path, HandTemplate, int, Mapping[str, str]], Iterable[RawSample | Reject | Unchanged]]
# write(root, records, rng, template) -> files written (synthetic datasets and tests)
Writer = Callable[[Path, Sequence[GraspRecord], np.random.Generator, HandTemplate], list[Path]]
# sources(root, frame_step) -> the dataset's source files in read order (each yields one or more samples)
Sources = Callable[[Path, int], Iterable[Path]]
# read_paths(root, template, frame_step, paths, known) -> `read` (or `read_known`, when known is not empty)
# restricted to `paths`, some of `sources`: what one ingest chunk reads
PathReader = Callable[[Path, HandTemplate, int, Sequence[Path], Mapping[str, str]],
                      Iterable[RawSample | Reject | Unchanged]]


@dataclass(frozen=True)
class DatasetFormat:
    """One dataset format. `labelled`: its files carry affordance labels and part maps (the classifier and the
    map model learn from it); the others are the targets that self-training labels."""

    name: str
    read: Reader
    labelled: bool = False
    write: Writer | None = None
    description: str = ""
    hand_model: str = "mano"  # schemas.hand: the hand its files store (AffordPose: GraspIt!'s ManoHand mesh)
    layout: str = ""  # where its input files sit under the dataset root, for the error when none is found
    read_known: KnownReader | None = None  # optional: a faster read for an incremental ingest
    # optional, together: ingest in chunks of `sources_per_chunk` source files, one task each (else one task);
    # None: a shard's worth (AFFORD_ROWS_PER_SHARD files, for formats with one sample a file)
    sources: Sources | None = None
    read_paths: PathReader | None = None
    sources_per_chunk: int | None = None


FORMATS: dict[str, DatasetFormat] = {}  # name -> format, in registration order


def register_format(fmt: DatasetFormat) -> DatasetFormat:
    """Add `fmt` to the registry (ValueError when its name is taken or not a plain folder name)."""
    if not fmt.name or not fmt.name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"format name {fmt.name!r}: use letters, digits, '-' and '_' (it names a folder)")
    if fmt.name in FORMATS and FORMATS[fmt.name] != fmt:
        raise ValueError(f"format {fmt.name!r} is already registered")
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str, field: str = "format") -> DatasetFormat:
    """The registered format `name`; ValueError naming `field` and every registered name otherwise."""
    if name not in FORMATS:
        raise ValueError(f"{field} {name!r} is not a registered dataset format; registered: {', '.join(FORMATS)}")
    return FORMATS[name]


def labelled_format() -> str:
    """The labelled format the classifier learns from (the first registered)."""
    return next(name for name, fmt in FORMATS.items() if fmt.labelled)


def writable_formats() -> tuple[str, ...]:
    """Formats the project can write (the synthetic datasets)."""
    return tuple(name for name, fmt in FORMATS.items() if fmt.write is not None)


def _read_affordpose(root: Path, template: HandTemplate, frame_step: int) -> Iterable[RawSample | Reject]:
    return iter_affordpose(root)  # each file is one grasp with its own hand vertices: no template, no frames


def _read_oakink(root: Path, template: HandTemplate, frame_step: int) -> Iterable[RawSample | Reject]:
    return iter_oakink(root, template)  # one grasp per file: no frames to step over


def _read_oakink_known(root: Path, template: HandTemplate, frame_step: int,
                       known: Mapping[str, str]) -> Iterable[RawSample | Reject | Unchanged]:
    return iter_oakink(root, template, known=known)


def _read_grab(root: Path, template: HandTemplate, frame_step: int) -> Iterable[RawSample | Reject]:
    return iter_grab(root, template, frame_step=frame_step)


def _read_ho3d(root: Path, template: HandTemplate, frame_step: int) -> Iterable[RawSample | Reject]:
    return iter_ho3d(root, template, frame_step=frame_step)


def _affordpose_paths(root: Path, template: HandTemplate, frame_step: int, paths: Sequence[Path],
                      known: Mapping[str, str]) -> Iterable[RawSample | Reject]:
    return iter_affordpose(root, paths=paths)


def _oakink_paths(root: Path, template: HandTemplate, frame_step: int, paths: Sequence[Path],
                  known: Mapping[str, str]) -> Iterable[RawSample | Reject | Unchanged]:
    return iter_oakink(root, template, known=known or None, paths=paths)


def _grab_paths(root: Path, template: HandTemplate, frame_step: int, paths: Sequence[Path],
                known: Mapping[str, str]) -> Iterable[RawSample | Reject]:
    return iter_grab(root, template, frame_step=frame_step, paths=paths)


def _ho3d_paths(root: Path, template: HandTemplate, frame_step: int, paths: Sequence[Path],
                known: Mapping[str, str]) -> Iterable[RawSample | Reject]:
    return iter_ho3d(root, template, frame_step=frame_step, paths=paths)  # the paths are already every k-th


def _write_affordpose(root: Path, records: Sequence[GraspRecord], rng: np.random.Generator,
                      template: HandTemplate) -> list[Path]:
    return write_affordpose(root, records)  # stores a posed hand mesh, not MANO parameters


for _fmt in (
    DatasetFormat("affordpose", _read_affordpose, labelled=True, write=_write_affordpose,
                  description="AffordPose JSON grasps with part-labelled object meshes",
                  layout="<class>/<obj_id>/<obj_id>_<Affordance>/<N>.json",
                  hand_model="graspit_manohand", sources=lambda root, step: affordpose_sources(root),
                  read_paths=_affordpose_paths),
    DatasetFormat("oakink", _read_oakink, write=write_oakink, description="OakInk-Shape pickles + metaV2",
                  read_known=_read_oakink_known,
                  layout="oakink_shape_v2/<cat>/<src_oid>/<grasp_id>[/<virtual_oid>]/hand_param.pkl",
                  sources=lambda root, step: oakink_sources(root), read_paths=_oakink_paths),
    # a GRAB sequence holds hundreds of frames: a few sequence files are a chunk's worth
    DatasetFormat("grab", _read_grab, write=write_grab, description="GRAB sequence npz files",
                  layout="grab/<subject>/<sequence>.npz", sources=lambda root, step: grab_sources(root),
                  read_paths=_grab_paths, sources_per_chunk=8),
    DatasetFormat("ho3d", _read_ho3d, write=write_ho3d, description="HO-3D meta pickles + YCB models",
                  layout="<split>/<sequence>/meta/<frame>.pkl", sources=ho3d_sources, read_paths=_ho3d_paths),
):
    register_format(_fmt)


def load_plugins(modules: str | None = None) -> list[str]:
    """Import each module named in `modules` (default: $AFFORD_FORMAT_PLUGINS) so it registers its formats."""
    names = [m.strip() for m in (modules if modules is not None else os.environ.get(PLUGINS_ENV, "")).split(",")]
    loaded = []
    for name in filter(None, names):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"{PLUGINS_ENV}: cannot import format plugin {name!r} ({exc})") from None
        loaded.append(name)
    return loaded


load_plugins()
