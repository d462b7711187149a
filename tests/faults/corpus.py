"""A corpus of crafted bad inputs in the four dataset formats, written beside good ones.

Each crafted input is a copy of a good file of its dataset under a new name, then broken one way: truncated, not
the format, nested 100,000 deep, a pickle that runs code or asks for gigabytes from a few bytes, a header that
claims a terabyte, a name that leaves the dataset root, a directory named like a data file, a link to a system
file, NaN and wrong shapes in every field the loaders read. Ingest must turn each into exactly one reject naming
that file, keep every good file, run no code and allocate nothing large.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MARKER = "pwned"  # a file the code-running pickles would create in the dataset root


@dataclass(frozen=True)
class Crafted:
    """One crafted input: its dataset format, the file the reject must name (relative to the dataset root)."""

    fmt: str
    source: str
    mode: str


class _RunsCode:
    """Pickles to os.system(touch <marker>): refused by the allow-list, so the marker never appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# -- pickles that a few bytes make expensive ----------------------------------------------------------------
def _pickle_global(module: str, name: str, argument: bytes) -> bytes:
    """Protocol-2 pickle calling module.name(argument) (argument already pickled)."""
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + argument + b"\x85R."


def _int_opcode(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


HUGE = 2_000_000_000
HOSTILE_PICKLES: dict[str, bytes] = {
    "bytearray of 2 GB": _pickle_global("builtins", "bytearray", _int_opcode(HUGE)),
    "bytes of 2 GB": _pickle_global("builtins", "bytes", _int_opcode(HUGE)),
    "py2 bytearray of 2 GB": _pickle_global("__builtin__", "bytearray", _int_opcode(HUGE)),
    "ndarray of 16 GB": _pickle_global("numpy", "ndarray", _int_opcode(HUGE)),
    "truncated pickle": pickle.dumps({"a": np.zeros(50)}, protocol=2)[:40],
    "empty pickle": b"",
    "random bytes": np.random.default_rng(0).bytes(300),
    "a global off the allow-list": pickle.dumps(__import__("collections").OrderedDict(a=1), protocol=2),
    "a list, not a dict": pickle.dumps([1, 2, 3], protocol=2),
    "deeply nested lists": b"\x80\x02" + b"]" * 100_000 + b".",
}


# -- AffordPose ----------------------------------------------------------------------------------------------
def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _json_edit(change: Callable[[dict], Any]) -> Callable[[bytes], bytes]:
    def edit(payload: bytes) -> bytes:
        data = json.loads(payload)
        change(data)
        return json.dumps(data).encode()
    return edit


def _set(key: str, value: Any) -> Callable[[bytes], bytes]:
    return _json_edit(lambda data: data.__setitem__(key, value))


def _drop(key: str) -> Callable[[bytes], bytes]:
    return _json_edit(lambda data: data.pop(key))


def _obj_lines(key: str, change: Callable[[list[str]], list[str]]) -> Callable[[bytes], bytes]:
    def edit(data: dict) -> None:
        lines = data[key] if isinstance(data[key], list) else data[key].splitlines(keepends=True)
        data[key] = change(list(lines))
    return _json_edit(edit)


def _first_vertex(replacement: str) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        i = next(k for k, line in enumerate(lines) if line.startswith("v "))
        lines[i] = replacement
        return lines
    return change


def _no_faces(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith("f ")]


def _bad_face(lines: list[str]) -> list[str]:
    return [*lines, "f 1 2 999999\n"]


def _unlabelled(lines: list[str]) -> list[str]:
    return [" ".join(line.split()[:4]) + "\n" if line.startswith("v ") else line for line in lines]


AFFORDPOSE: dict[str, Callable[[bytes], bytes]] = {
    "truncated at 10 bytes": lambda p: p[:10],
    "truncated at half": lambda p: p[:len(p) // 2],
    "empty file": lambda p: b"",
    "not UTF-8": lambda p: b"\xff\xfe" + p[2:],
    "nested 1,000 deep": lambda p: _nested(1_000),
    "nested 100,000 deep": lambda p: _nested(100_000),
    "objects nested 5,000 deep": lambda p: b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "a list, not an object": lambda p: b"[1, 2, 3]",
    "a number": lambda p: b"42",
    "null": lambda p: b"null",
    "object_mesh missing": _drop("object_mesh"),
    "object_mesh null": _set("object_mesh", None),
    "object_mesh a number": _set("object_mesh", 7),
    "object_mesh a list of numbers": _set("object_mesh", [1, 2, 3]),
    "object_mesh a vertex with 2 numbers": _obj_lines("object_mesh", _first_vertex("v 1 2\n")),
    "object_mesh a vertex of words": _obj_lines("object_mesh", _first_vertex("v a b c 1\n")),
    "object_mesh a NaN vertex": _obj_lines("object_mesh", _first_vertex("v nan 0 0 1\n")),
    "object_mesh an infinite vertex": _obj_lines("object_mesh", _first_vertex("v 1e400 0 0 1\n")),
    "object_mesh no faces": _obj_lines("object_mesh", _no_faces),
    "object_mesh a face past the vertices": _obj_lines("object_mesh", _bad_face),
    "object_mesh no part labels": _obj_lines("object_mesh", _unlabelled),
    "rhand_mesh missing": _drop("rhand_mesh"),
    "rhand_mesh a NaN vertex": _obj_lines("rhand_mesh", _first_vertex("v nan 0 0\n")),
    "rhand_mesh no faces": _obj_lines("rhand_mesh", _no_faces),
    "rhand_mesh a face past the vertices": _obj_lines("rhand_mesh", _bad_face),
    "dofs missing": _drop("dofs"),
    "dofs of length 15": _json_edit(lambda d: d.__setitem__("dofs", d["dofs"][:15])),
    "dofs with NaN": _json_edit(lambda d: d.__setitem__("dofs", [float("nan")] * len(d["dofs"]))),
    "dofs a string": _set("dofs", "sixteen"),
    "rhand_quat of length 3": _set("rhand_quat", [1.0, 0.0, 0.0]),
    "rhand_quat all zero": _set("rhand_quat", [0.0, 0.0, 0.0, 0.0]),
    "rhand_trans of length 2": _set("rhand_trans", [0.0, 0.0]),
    "object_mesh an empty list": _set("object_mesh", []),
    "rhand_mesh one line of garbage": _set("rhand_mesh", "garbage\n"),
}


def _affordpose(root: Path, corpus: list[Crafted]) -> None:
    source = min(root.rglob("*.json"))
    for k, (mode, breakage) in enumerate(AFFORDPOSE.items()):
        target = source.with_name(f"{1000 + k}.json")
        target.write_bytes(breakage(source.read_bytes()))
        corpus.append(Crafted("affordpose", target.relative_to(root).as_posix(), mode))
    lookalike = source.with_name("1999.json")
    lookalike.mkdir()
    corpus.append(Crafted("affordpose", lookalike.relative_to(root).as_posix(), "a directory named like a file"))


# -- OakInk-Shape ---------------------------------------------------------------------------------------------
def _oakink_param(change: Callable[[dict], Any]) -> Callable[[Path, Path], None]:
    def edit(root: Path, grasp: Path) -> None:
        path = grasp / "hand_param.pkl"
        with open(path, "rb") as handle:  # our own synthetic file: trusted
            data = pickle.load(handle)
        change(data)
        path.write_bytes(pickle.dumps(data, protocol=2))
    return edit


def _write(name: str, payload: bytes) -> Callable[[Path, Path], None]:
    return lambda root, grasp: (grasp / name).write_bytes(payload)


def _replace_with_directory(name: str) -> Callable[[Path, Path], None]:
    def edit(root: Path, grasp: Path) -> None:
        (grasp / name).unlink()
        (grasp / name).mkdir()
    return edit


def _link_source_to(target: str) -> Callable[[Path, Path], None]:
    def edit(root: Path, grasp: Path) -> None:
        (grasp / "source.txt").unlink()
        (grasp / "source.txt").symlink_to(target)
    return edit


def _first_key(data: dict, *names: str) -> str:
    return next(name for name in names if name in data)


OAKINK: dict[str, Callable[[Path, Path], None]] = {
    **{f"hand_param.pkl: {mode}": _write("hand_param.pkl", payload) for mode, payload in HOSTILE_PICKLES.items()},
    "hand_param.pkl: a pickle that runs code": lambda root, grasp: (grasp / "hand_param.pkl").write_bytes(
        pickle.dumps({"pose": _RunsCode(root / MARKER)}, protocol=2)),
    "hand_param.pkl: a directory": _replace_with_directory("hand_param.pkl"),
    "hand_param.pkl: pose of 47 values": _oakink_param(
        lambda d: d.__setitem__(_first_key(d, "pose", "hand_pose"), np.zeros(47))),
    "hand_param.pkl: NaN shape": _oakink_param(lambda d: d.__setitem__("shape", np.full(10, np.nan))),
    "hand_param.pkl: translation a string": _oakink_param(lambda d: d.__setitem__("tsl", "far")),
    "hand_param.pkl: no pose": _oakink_param(lambda d: d.pop(_first_key(d, "pose", "hand_pose"))),
    "source.txt: garbage": _write("source.txt", b"not a source line"),
    "source.txt: 2 MB of text": _write("source.txt", b"x" * 2_000_000),
    "source.txt: binary": _write("source.txt", np.random.default_rng(1).bytes(500)),
    "source.txt: another object": _write("source.txt", b"pass1/Z99999_0001_0001/00000"),
    "source.txt: an unknown intent": _write("source.txt", b"pass1/{oid}_0099_0001/00000"),
    "source.txt: missing": lambda root, grasp: (grasp / "source.txt").unlink(),
    "source.txt: a link to /etc/passwd": _link_source_to("/etc/passwd"),
    "source.txt: a directory": _replace_with_directory("source.txt"),
}


def _oakink(root: Path, corpus: list[Crafted]) -> None:
    param = min((root / "oakink_shape_v2").rglob("hand_param.pkl"), key=lambda p: len(p.parts))  # a real object
    grasp = param.parent
    oid = grasp.parent.name
    for k, (mode, breakage) in enumerate(OAKINK.items()):
        copy = grasp.with_name(f"crafted{k:03d}")
        shutil.copytree(grasp, copy)
        if mode == "source.txt: an unknown intent":
            (copy / "source.txt").write_text(f"pass1/{oid}_0099_0001/00000")
        else:
            breakage(root, copy)
        corpus.append(Crafted("oakink", (copy / "hand_param.pkl").relative_to(root).as_posix(), mode))


# -- GRAB -----------------------------------------------------------------------------------------------------
def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy file that is all header: it claims `shape` and holds no data."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _replace_member(member: str, payload: bytes) -> Callable[[Path, Path], None]:
    def edit(root: Path, path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        members[f"{member}.npy"] = payload
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return edit


def _object_member(payload: bytes) -> bytes:
    """A .npy holding an object array: header with descr '|O', then the pickle."""
    return _npy_header((), "|O") + payload


def _grab_edit(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def edit(root: Path, path: Path) -> None:
        with np.load(path, allow_pickle=True) as archive:  # our own synthetic file: trusted
            data = {k: archive[k].item() if archive[k].dtype == object else archive[k] for k in archive.files}
        change(data)
        buffer = io.BytesIO()
        np.savez(buffer, **data)
        path.write_bytes(buffer.getvalue())
    return edit


GRAB: dict[str, Callable[[Path, Path], None]] = {
    "truncated": lambda root, p: p.write_bytes(p.read_bytes()[:300]),
    "empty": lambda root, p: p.write_bytes(b""),
    "random bytes": lambda root, p: p.write_bytes(np.random.default_rng(2).bytes(4000)),
    "a header claiming (10**12, 3)": _replace_member("n_frames", _npy_header((10**12, 3))),
    "a header claiming (2**40,) in rhand": _replace_member("rhand", _npy_header((2**40,))),
    **{f"rhand member: {mode}": _replace_member("rhand", _object_member(payload))
       for mode, payload in HOSTILE_PICKLES.items() if payload},
    "a pickle that runs code": lambda root, p: _replace_member("rhand", _object_member(
        pickle.dumps(_RunsCode(root / MARKER), protocol=2)))(root, p),
    "no rhand member": _grab_edit(lambda d: d.pop("rhand")),
    "fullpose of width 44": _grab_edit(lambda d: d["rhand"]["params"].update(
        fullpose=np.zeros((len(d["rhand"]["params"]["fullpose"]), 44)))),
    "object mesh path leaving the root": _grab_edit(lambda d: d["object"].update(object_mesh="../../etc/passwd")),
    "object mesh path absolute": _grab_edit(lambda d: d["object"].update(object_mesh="/etc/passwd")),
    "a directory": lambda root, p: (p.unlink(), p.mkdir()),
    "a zip with no members": lambda root, p: zipfile.ZipFile(p, "w").close(),
}


def _grab(root: Path, corpus: list[Crafted]) -> None:
    source = min((root / "grab").rglob("*.npz"))
    obj = source.stem.split("_")[0]
    for k, (mode, breakage) in enumerate(GRAB.items()):
        copy = source.with_name(f"{obj}_crafted{k:03d}_1.npz")
        shutil.copy(source, copy)
        breakage(root, copy)
        corpus.append(Crafted("grab", copy.relative_to(root).as_posix(), mode))


# -- HO-3D ----------------------------------------------------------------------------------------------------
def _ho3d_edit(key: str, value: Any) -> Callable[[Path, Path], None]:
    def edit(root: Path, path: Path) -> None:
        with open(path, "rb") as handle:  # our own synthetic file: trusted
            meta = pickle.load(handle)
        meta[key] = value
        path.write_bytes(pickle.dumps(meta, protocol=2))
    return edit


def _overwrite(payload: bytes) -> Callable[[Path, Path], None]:
    return lambda root, path: path.write_bytes(payload)


HO3D: dict[str, Callable[[Path, Path], None]] = {
    **{mode: _overwrite(payload) for mode, payload in HOSTILE_PICKLES.items()},
    "a pickle that runs code": lambda root, p: p.write_bytes(pickle.dumps({"handPose": _RunsCode(root / MARKER)},
                                                                          protocol=2)),
    "handPose of 45 values": _ho3d_edit("handPose", np.zeros(45)),
    "handTrans infinite": _ho3d_edit("handTrans", np.array([0.0, np.inf, 0.0])),
    "handBeta a string": _ho3d_edit("handBeta", "ten"),
    "objRot of shape (2, 2)": _ho3d_edit("objRot", np.zeros((2, 2))),
    "objName leaving the root": _ho3d_edit("objName", "../../../etc"),
    "objName absolute": _ho3d_edit("objName", "/etc"),
    "objName a number": _ho3d_edit("objName", 3),
    "objName of no model": _ho3d_edit("objName", "no_such_object"),
    "JSON, not a pickle": lambda root, p: p.write_bytes(b'{"handPose": [0, 0, 0]}'),
    "an evaluation frame (no handPose)": _ho3d_edit("handPose", None),
    "a directory": lambda root, p: (p.unlink(), p.mkdir()),
}


def _ho3d(root: Path, corpus: list[Crafted]) -> None:
    source = min(root.rglob("meta/*.pkl"))
    for k, (mode, breakage) in enumerate(HO3D.items()):
        copy = source.with_name(f"{9000 + k:04d}.pkl")
        shutil.copy(source, copy)
        breakage(root, copy)
        corpus.append(Crafted("ho3d", copy.relative_to(root).as_posix(), mode))


WRITERS = {"affordpose": _affordpose, "oakink": _oakink, "grab": _grab, "ho3d": _ho3d}


def craft_corpus(datasets: Path) -> list[Crafted]:
    """Write the crafted inputs into `datasets/<format>/` (as `afford synth` lays the four datasets out) and
    return them."""
    corpus: list[Crafted] = []
    for fmt, write in WRITERS.items():
        write(datasets / fmt, corpus)
    return corpus


FORMATS = tuple(WRITERS)


@dataclass
class IngestedCorpus:
    """Four synthetic datasets with the corpus beside their good files, ingested: the crafted inputs, the good
    inputs per format (counted before the corpus was added), each format's IngestCounts and every reject."""

    root: Path
    corpus: list[Crafted]
    good: dict[str, int]
    counts: dict[str, Any]
    rejects: list[Any]


def ingest_corpus_alone(root: Path, seed: int = 0) -> tuple[IngestedCorpus, float]:
    """`ingest_corpus` in a fresh (spawned) interpreter: (its result, that process's peak RSS in GB). A peak
    read inside a test process would also hold whatever earlier tests allocated."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_ingest_and_measure, root, seed).result()


def _ingest_and_measure(root: Path, seed: int) -> tuple[IngestedCorpus, float]:
    done = ingest_corpus(root, seed)
    return done, peak_rss_gb()


def peak_rss_gb() -> float:
    """This process image's peak RSS in GB: /proc/self/status VmHWM, which starts afresh at exec. getrusage's
    ru_maxrss does not: Linux carries it across fork and exec, so a child spawned by a 1.5 GB parent reports
    at least 1.5 GB whatever it does itself."""
    import resource

    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def ingest_corpus(root: Path, seed: int = 0) -> IngestedCorpus:
    """Synthesize two categories of the four datasets under `root/datasets`, craft the corpus, ingest each format
    into `root/tables` with the real pipeline (what tests/faults and bench/bench_faults.py both measure)."""
    from schemas.rows import Reject
    from tasks.ingest.mano_frame import HandTemplate
    from tasks.ingest.pipeline import ingest, iter_raw, load_hand
    from tasks.store.read import open_table
    from tasks.synth.datasets import synthesize_datasets

    summary = synthesize_datasets(root / "datasets", objects_per_category=1, seed=seed, steps=5,
                                  categories=("mug", "bottle"))
    template = HandTemplate.from_mano(load_hand(summary.mano_root)[0])
    good = {fmt: sum(1 for _ in iter_raw(fmt, root / "datasets" / fmt, template)) for fmt in FORMATS}
    corpus = craft_corpus(root / "datasets")
    counts = {fmt: ingest(fmt, root / "datasets" / fmt, root / "tables" / fmt, summary.mano_root, num_points=64)
              for fmt in FORMATS}
    rejects = list(open_table(root / "tables" / "rejects", Reject).iter_rows())
    return IngestedCorpus(root, corpus, good, counts, rejects)
