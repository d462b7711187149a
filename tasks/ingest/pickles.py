"""Reading the datasets' pickles without executing them: an allow-list unpickler (numpy arrays, plain containers)."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

from schemas.safe_pickle import AllowListUnpickler, UnsafePickleError
from tasks.ingest.common import IngestError, read_bytes


class SafeUnpickler(AllowListUnpickler):
    """The shared allow-list unpickler, reporting a refusal as an IngestError naming the file and field."""

    def __init__(self, file: io.BufferedIOBase, where: str, field: str = "pickle"):
        super().__init__(file, where)
        self.field = field

    def refuse(self, module: str, name: str) -> Any:
        raise IngestError(self.where, self.field, f"refused to unpickle {module}.{name}: only numpy arrays "
                                                  f"and builtin containers, numbers and strings are allowed")


def safe_unpickle(file: io.BufferedIOBase, where: str, field: str = "pickle") -> Any:
    """Load one pickle from an open binary file through SafeUnpickler; IngestError on anything wrong."""
    try:
        return SafeUnpickler(file, where, field).load()
    except IngestError:
        raise
    except UnsafePickleError as exc:  # a refusal inside an allowed callable (e.g. an object dtype)
        raise IngestError(where, field, str(exc)) from None
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

