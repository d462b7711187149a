"""Read and write MANO hand-model pickles: the licensed MANO_RIGHT.pkl / MANO_LEFT.pkl, and our generated hand.

The official files are Python-2 pickles that hold chumpy objects and a scipy.sparse `J_regressor`. chumpy does not
import on Python 3.11 / numpy 2, and a plain `pickle.load` runs whatever callable a file names. So the reader is a
restricted unpickler:

* chumpy objects (any `chumpy.*` global) become inert stand-ins that only keep their pickled attributes; a plain
  `chumpy.ch.Ch` stores its value under `'x'`, which is all we read;
* scipy sparse matrices (csc / csr / coo, old and new module paths) become inert stand-ins too, and are densified
  here with numpy after bounds checks, so scipy's own code never sees the file's arrays;
* numpy arrays, dtypes and scalars, and `set` / `frozenset`, load as usual;
* every other global is refused with `UnsafePickleError` before it can run.

`load_mano_pickle` keeps only the fields of `ManoParams` (extra keys such as 'bs_type', 'bs_style', 'J' and
'hands_coeffs' are ignored) and validates them. `save_mano_pickle` writes plain numpy arrays with the same keys, so
the one loader reads both the official file and ours.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from schemas.safe_pickle import AllowListUnpickler, UnsafePickleError

NUM_VERTS = 778
NUM_FACES = 1538
NUM_JOINTS = 16
NUM_BETAS = 10
NUM_POSE_FEATURES = 9 * (NUM_JOINTS - 1)  # (R_j - I) flattened for the 15 non-root joints
NUM_PCA_COMPS = 45
ROOT_PARENT_VALUES = (-1, 2**32 - 1)  # the official files store the root's parent -1 as uint32 4294967295

# Field -> (shape, dtype). This is the whole MANO model as ManoLayer uses it.
FIELDS: dict[str, tuple[tuple[int, ...], type[np.generic]]] = {
    "v_template": ((NUM_VERTS, 3), np.float64),
    "f": ((NUM_FACES, 3), np.int64),
    "J_regressor": ((NUM_JOINTS, NUM_VERTS), np.float64),
    "weights": ((NUM_VERTS, NUM_JOINTS), np.float64),
    "kintree_table": ((2, NUM_JOINTS), np.int64),
    "shapedirs": ((NUM_VERTS, 3, NUM_BETAS), np.float64),
    "posedirs": ((NUM_VERTS, 3, NUM_POSE_FEATURES), np.float64),
    "hands_components": ((NUM_PCA_COMPS, 45), np.float64),
    "hands_mean": ((45,), np.float64),
}
MODEL_FILES = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}


@dataclass(frozen=True, eq=False)
class ManoParams:
    """The MANO model arrays (read-only copies, cast to the dtypes of `FIELDS`).

    v_template: (778, 3) float64, metres          f: (1538, 3) int64 vertex indices
    J_regressor: (16, 778) float64, dense          weights: (778, 16) float64 skinning weights
    kintree_table: (2, 16) int64: row 0 parents (root: -1 or 4294967295), row 1 joint ids 0..15
    shapedirs: (778, 3, 10) float64                posedirs: (778, 3, 135) float64
    hands_components: (45, 45) float64, PCA rows   hands_mean: (45,) float64 mean finger pose, axis-angle
    """

    v_template: np.ndarray
    f: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    kintree_table: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    hands_components: np.ndarray
    hands_mean: np.ndarray

    def __post_init__(self) -> None:
        for name, (_, dtype) in FIELDS.items():
            object.__setattr__(self, name, _as_field(name, getattr(self, name), dtype))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field with a wrong shape, a non-finite value or a bad index."""
        for name, (shape, _) in FIELDS.items():
            value = getattr(self, name)
            if value.shape != shape:
                raise ValueError(f"ManoParams.{name}: expected shape {shape}, got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"ManoParams.{name}: expected finite values, got NaN or inf")
        if self.f.min() < 0 or self.f.max() >= NUM_VERTS:
            raise ValueError(f"ManoParams.f: expected vertex indices in [0, {NUM_VERTS}), "
                             f"got [{self.f.min()}, {self.f.max()}]")
        _check_kintree(self.kintree_table)

    @property
    def parents(self) -> list[int]:
        """Parent joint of each of the 16 joints, -1 for the root."""
        return [-1, *self.kintree_table[0, 1:].tolist()]

    def to_dict(self) -> dict[str, np.ndarray]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


def _as_field(name: str, value: Any, dtype: type[np.generic]) -> np.ndarray:
    """A read-only copy of `value` as `dtype`; integer fields refuse float input rather than truncate it."""
    try:
        source = np.asarray(value)
        if np.issubdtype(dtype, np.integer) and source.dtype.kind not in "iu":
            raise ValueError(f"expected integers, got dtype {source.dtype}")
        array = np.array(source, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ManoParams.{name}: cannot read as {np.dtype(dtype).name}: {exc}") from None
    array.setflags(write=False)
    return array


def _check_kintree(kintree: np.ndarray) -> None:
    """Row 1 must be the joint ids 0..15 and every parent must come before its child (forward kinematics
    walks the joints in index order)."""
    if not np.array_equal(kintree[1], np.arange(NUM_JOINTS)):
        raise ValueError(f"ManoParams.kintree_table: expected row 1 = 0..{NUM_JOINTS - 1}, got {kintree[1].tolist()}")
    if int(kintree[0, 0]) not in ROOT_PARENT_VALUES:
        raise ValueError(f"ManoParams.kintree_table: expected root parent in {ROOT_PARENT_VALUES}, "
                         f"got {int(kintree[0, 0])}")
    for joint in range(1, NUM_JOINTS):
        if not 0 <= kintree[0, joint] < joint:
            raise ValueError(f"ManoParams.kintree_table: parent of joint {joint} must be in [0, {joint}), "
                             f"got {int(kintree[0, joint])}")


def mano_file(mano_root: str | os.PathLike[str], side: str) -> Path:
    """Path of MANO_RIGHT.pkl / MANO_LEFT.pkl in `mano_root`; FileNotFoundError when it is not there."""
    if side not in MODEL_FILES:
        raise ValueError(f"side: expected one of {sorted(MODEL_FILES)}, got {side!r}")
    path = Path(mano_root) / MODEL_FILES[side]
    if not path.is_file():
        raise FileNotFoundError(
            f"MANO model {path} not found. MANO is licensed: download it from https://mano.is.tue.mpg.de and "
            f"put {MODEL_FILES[side]} in {Path(mano_root)}, or use the generated hand (models/synthetic_hand.py)."
        )
    return path


def save_mano_pickle(path: str | os.PathLike[str], params: ManoParams) -> None:
    """Write `params` as a dict of plain numpy arrays (pickle protocol 2, the official files' protocol).

    Written to a temporary name and renamed into place, so a crash never leaves a half-written model.
    """
    path = Path(path)
    payload = {name: np.ascontiguousarray(value) for name, value in params.to_dict().items()}
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as fh:
            pickle.dump(payload, fh, protocol=2)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def load_mano_pickle(path: str | os.PathLike[str]) -> ManoParams:
    """Read an official MANO pickle (chumpy + scipy.sparse inside) or one written by `save_mano_pickle`.

    Raises UnsafePickleError when the file names anything but numpy / scipy.sparse / chumpy data, and
    ValueError (naming the file and the field) when it is not a readable MANO model.
    """
    path = Path(path)
    with path.open("rb") as fh:
        raw = _unpickle(fh, path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of MANO arrays, got {type(raw).__name__}")
    missing = [name for name in FIELDS if name not in raw]
    if missing:
        raise ValueError(f"{path}: missing MANO fields {missing} (has {sorted(map(str, raw))})")
    try:
        return ManoParams(**{name: _to_dense(raw[name], name) for name in FIELDS})
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # a stand-in's state is whatever the file held
        raise ValueError(f"{path}: {exc}") from None


def _unpickle(fh: BinaryIO, path: Path) -> Any:
    try:
        return _RestrictedUnpickler(fh, path).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # a corrupt file fails in many ways: EOFError, UnpicklingError, ValueError, ...
        raise ValueError(f"{path}: not a readable MANO pickle: {type(exc).__name__}: {exc}") from exc


# ---- restricted unpickling ----------------------------------------------------------------------------------

_SPARSE_MODULES = {f"scipy.sparse{suffix}" for suffix in ("", ".csc", "._csc", ".csr", "._csr", ".coo", "._coo")}
_SPARSE_CLASSES = {f"{fmt}_{kind}" for fmt in ("csc", "csr", "coo") for kind in ("matrix", "array")}
_MAX_CHUMPY_NESTING = 8  # a Ch whose 'x' is a Ch ...; bounds a file that makes 'x' point back at itself


class _Inert:
    """Base of the stand-ins: built without running any code of the class it replaces.

    `source` is the replaced `module.name`; `state` the pickled attributes (the BUILD opcode's argument).
    """

    source = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # reached only through REDUCE; the args are ignored
        pass

    def __setstate__(self, state: Any) -> None:
        # Protocol 2 pickles an object's __dict__, or (__dict__, slots) for a class with __slots__.
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"{self.source}: expected a dict of attributes, got {type(state).__name__}")
        self.__dict__["state"] = state

    @property
    def attrs(self) -> dict[str, Any]:
        return self.__dict__.get("state", {})


class _ChumpyValue(_Inert):
    """A chumpy object. Only a plain `chumpy.ch.Ch` holds a stored value ('x'); every other chumpy class is an
    expression (sum, reshape, ...) whose value chumpy would compute."""

    def to_numpy(self, field: str, depth: int = 0) -> np.ndarray:
        if self.source not in ("chumpy.ch.Ch", "chumpy.Ch"):
            raise ValueError(f"field {field!r} is a chumpy expression ({self.source}), not a stored value; only "
                             "plain chumpy.ch.Ch values can be read without chumpy")
        if "x" not in self.attrs:
            raise ValueError(f"field {field!r}: chumpy.ch.Ch without its value 'x' (has {sorted(self.attrs)})")
        if depth >= _MAX_CHUMPY_NESTING:
            raise ValueError(f"field {field!r}: chumpy values nested more than {_MAX_CHUMPY_NESTING} deep")
        return _to_dense(self.attrs["x"], field, depth + 1)


class _SparseValue(_Inert):
    """A scipy.sparse matrix or array, densified with numpy after its index arrays are checked."""

    def to_dense(self, field: str) -> np.ndarray:
        shape = tuple(int(n) for n in self.attrs.get("_shape", self.attrs.get("shape", ())))
        expected = FIELDS[field][0]
        if shape != expected:  # checked before allocating: a forged shape must not cost gigabytes
            raise ValueError(f"ManoParams.{field}: expected shape {expected}, got sparse {shape}")
        rows, cols = self._coordinates(field, shape)
        data = np.asarray(self._get("data", field), dtype=np.float64).reshape(-1)
        if not rows.shape == cols.shape == data.shape:
            raise ValueError(f"field {field!r}: sparse data has {data.size} values for {rows.size} indices")
        dense = np.zeros(shape)
        np.add.at(dense, (rows, cols), data)  # duplicates add up, as in scipy
        return dense

    def _coordinates(self, field: str, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the stored values, each checked to lie inside `shape`."""
        fmt = self.source.rsplit(".", 1)[1][:3]
        if fmt == "coo":
            rows, cols = self.attrs["coords"] if "coords" in self.attrs else (self._get("row", field),
                                                                               self._get("col", field))
            rows, cols = _indices(rows, shape[0], field), _indices(cols, shape[1], field)
        else:
            major, minor = (1, 0) if fmt == "csc" else (0, 1)  # csc compresses columns, csr rows
            indptr = _indices(self._get("indptr", field), np.iinfo(np.int64).max, field)
            inner = _indices(self._get("indices", field), shape[minor], field)
            if indptr.size != shape[major] + 1 or indptr[0] != 0 or indptr[-1] != inner.size or (
                    np.diff(indptr) < 0).any():
                raise ValueError(f"field {field!r}: malformed sparse index pointer")
            outer = np.repeat(np.arange(shape[major]), np.diff(indptr))
            rows, cols = (inner, outer) if fmt == "csc" else (outer, inner)
        return rows, cols

    def _get(self, key: str, field: str) -> Any:
        if key not in self.attrs:
            raise ValueError(f"field {field!r}: {self.source} without {key!r} (has {sorted(self.attrs)})")
        return self.attrs[key]


def _indices(value: Any, bound: int, field: str) -> np.ndarray:
    array = np.asarray(value).reshape(-1)
    if array.dtype.kind not in "iu" or (array.size and (array.min() < 0 or array.max() >= bound)):
        raise ValueError(f"field {field!r}: sparse indices out of range [0, {bound})")
    return array.astype(np.int64)


def _to_dense(value: Any, field: str, depth: int = 0) -> np.ndarray:
    """The numpy array behind a loaded value: an array, a chumpy Ch, a sparse matrix or plain numbers."""
    if isinstance(value, _ChumpyValue):
        return value.to_numpy(field, depth)
    if isinstance(value, _SparseValue):
        return value.to_dense(field)
    if isinstance(value, np.ndarray | np.generic | int | float | list | tuple):
        return np.asarray(value)
    raise ValueError(f"field {field!r}: expected an array, got {type(value).__name__}")


class _RestrictedUnpickler(AllowListUnpickler):
    """The shared allow-list unpickler plus what a MANO file needs: chumpy and scipy.sparse globals become inert
    stand-in classes, built per load (so nothing a file does to them, BUILD can set attributes, outlives the
    load), and copy_reg's reconstructor, which may build stand-ins only."""

    def __init__(self, fh: BinaryIO, path: Path) -> None:
        self._stand_ins: dict[str, type[_Inert]] = {}
        extra: dict[tuple[str, str], Any] = {}
        for builtins in ("__builtin__", "builtins"):
            extra[builtins, "object"] = object  # the `base` argument of copy_reg._reconstructor
        for copyreg in ("copy_reg", "copyreg"):
            extra[copyreg, "_reconstructor"] = self._reconstructor
        super().__init__(fh, str(path), extra)

    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return self._stand_in(_ChumpyValue, module, name)
        if module in _SPARSE_MODULES and name in _SPARSE_CLASSES:
            return self._stand_in(_SparseValue, module, name)
        return super().find_class(module, name)

    def refuse(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"{self.where}: refusing to load {module}.{name}: a MANO model file holds only "
                                "numpy arrays, scipy.sparse matrices and chumpy values (nothing was run)")

    def _stand_in(self, base: type[_Inert], module: str, name: str) -> type[_Inert]:
        source = f"{module}.{name}"
        if source not in self._stand_ins:
            self._stand_ins[source] = type(name, (base,), {"source": source, "__module__": __name__})
        return self._stand_ins[source]

    def _reconstructor(self, cls: Any, base: Any, state: Any) -> Any:
        # Protocol 0/1 builds objects with copy_reg._reconstructor(cls, object, None): stand-ins only.
        is_stand_in = any(cls is stand_in for stand_in in self._stand_ins.values())
        if base is not object or state is not None or not is_stand_in:
            raise UnsafePickleError(f"copy_reg._reconstructor({cls!r}, {base!r}) refused")
        return cls.__new__(cls)
