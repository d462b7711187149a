"""Reading the datasets' pickles without executing them: an allow-list unpickler (numpy arrays, plain containers)."""

from __future__ import annotations

import importlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from tasks.ingest.common import IngestError, read_bytes

_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray",
                       "int", "float", "complex", "bool"})
# numpy's pickling entry points: arrays (protocols 0-4 and 5), scalars, dtypes. `_codecs.encode` rebuilds
# bytes in protocol-2 pickles (Python 2 files such as HO-3D's); it only encodes a string.
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that builds only numpy arrays, dtypes and scalars and builtin containers, numbers and strings.
    Any other global is refused before it is imported, so nothing in the pickle runs."""

    def __init__(self, file: io.BufferedIOBase, where: str, field: str = "pickle", encoding: str = "latin1"):
        super().__init__(file, encoding=encoding)
        self.where = where
        self.field = field

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _BUILTINS:
            return getattr(__import__("builtins"), name)
        if (module, name) not in _ALLOWED:
            raise IngestError(self.where, self.field, f"refused to unpickle {module}.{name}: only numpy arrays "
                                                      f"and builtin containers, numbers and strings are allowed")
        if module == "numpy":
            return getattr(np, name)
        if module == "_codecs":
            return importlib.import_module("_codecs").encode
        return _numpy_private(module.rsplit(".", 1)[-1], name)


def _numpy_private(submodule: str, name: str) -> Any:
    """numpy 2 keeps these in numpy._core, numpy 1 in numpy.core: take whichever this numpy has."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"numpy has no {submodule}.{name}")


def safe_unpickle(file: io.BufferedIOBase, where: str, field: str = "pickle") -> Any:
    """Load one pickle from an open binary file through SafeUnpickler; IngestError on anything wrong."""
    try:
        return SafeUnpickler(file, where, field).load()
    except IngestError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            UnicodeDecodeError, MemoryError) as exc:
        raise IngestError(where, field, f"truncated or corrupt pickle ({type(exc).__name__}: {exc})") from None


def safe_load_pickle(path: str | os.PathLike, where: str | None = None, field: str = "pickle") -> Any:
    """Load a pickle file that should hold only arrays, dicts, lists and strings (HO-3D meta, OakInk
    hand_param.pkl). Python-2 pickles load with encoding='latin1'. `where` names the file in errors."""
    where = where if where is not None else Path(path).as_posix()
    return safe_loads(read_bytes(Path(path), where, field), where, field)


def safe_loads(payload: bytes, where: str, field: str = "pickle") -> Any:
    return safe_unpickle(io.BytesIO(payload), where, field)

