"""The one allow-list unpickler: dataset pickles (HO-3D meta, OakInk hand_param.pkl, GRAB object arrays) and
MANO model files are read with it, so nothing a file names runs unless it is on the list.

The base list builds numpy arrays, dtypes and scalars and builtin containers, numbers and strings, under both
the Python-2 and Python-3 (and numpy 1 / 2) spellings. A reader adds what its files need (the MANO reader adds
inert chumpy and scipy.sparse stand-ins) and says how a refusal is reported.
"""

from __future__ import annotations

import math
import pickle
from typing import Any, BinaryIO

import numpy as np

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar

_BUILTIN_KINDS = (dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing of it was run."""


def _latin1_encode(text: Any, encoding: str = "latin1") -> bytes:
    # Python 3 pickles bytes at protocol <= 2 as _codecs.encode(text, 'latin1'); allow that use only.
    if not isinstance(text, str) or encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise UnsafePickleError(f"_codecs.encode is allowed for latin-1 text only, got {encoding!r}")
    return text.encode("latin1")


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    # numpy's protocol-5 array constructor, restated so the file never reaches numpy's own Python function.
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError(f"numpy _frombuffer with dtype {dtype!r} refused")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


# The most memory one constructor call in a pickle may ask for. Pickled data arrives as bytes in the file, so a
# legitimate constructor call never allocates much more than the file holds; the constructors below can be asked
# for any size by a few bytes (`bytearray(10**10)`, `ndarray((10**12,))`), so their sizes are checked first.
MAX_ALLOCATION_BYTES = 1 << 30


def _check_size(what: str, nbytes: int) -> None:
    if nbytes > MAX_ALLOCATION_BYTES:
        raise UnsafePickleError(f"{what} asks for {nbytes} bytes, over the {MAX_ALLOCATION_BYTES}-byte limit for "
                                f"one object in a pickle")


def _no_size_argument(kind: type) -> Any:
    """`kind` (bytes or bytearray) without its `kind(n)` form, which allocates n zero bytes from a short int."""
    def construct(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise UnsafePickleError(f"{kind.__name__}({args[0]}) refused: a pickle passes data, not a size")
        return kind(*args)
    return construct


def _array_size(shape: Any, dtype: Any) -> int:
    try:
        dims = (int(shape),) if isinstance(shape, int) else tuple(int(d) for d in shape)
        return math.prod(dims) * np.dtype(dtype).itemsize
    except (TypeError, ValueError) as exc:
        raise UnsafePickleError(f"array shape {shape!r} / dtype {dtype!r} refused ({exc})") from None


def _bounded_ndarray(shape: Any, dtype: Any = float, *args: Any, **kwargs: Any) -> np.ndarray:
    _check_size(f"numpy.ndarray{shape!r}", _array_size(shape, dtype))
    return np.ndarray(shape, dtype, *args, **kwargs)


def _bounded_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is _bounded_ndarray:  # the allow-list hands out the wrapper for numpy.ndarray
        subtype = np.ndarray
    if not (isinstance(subtype, type) and issubclass(subtype, np.ndarray)):
        raise UnsafePickleError(f"numpy _reconstruct of {subtype!r} refused: ndarray types only")
    _check_size(f"numpy _reconstruct{shape!r}", _array_size(shape, dtype))
    return _reconstruct(subtype, shape, dtype)


def _bounded_dtype(*args: Any, **kwargs: Any) -> np.dtype:
    dtype = np.dtype(*args, **kwargs)
    _check_size(f"numpy.dtype{args!r}", dtype.itemsize)
    return dtype


def base_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for numpy data and builtin containers, numbers and strings. Constructors that a
    few bytes can ask for gigabytes are wrapped with a size check (MAX_ALLOCATION_BYTES)."""
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _bounded_ndarray, ("numpy", "dtype"): _bounded_dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed |= {(f"{core}.multiarray", "_reconstruct"): _bounded_reconstruct,
                    (f"{core}.multiarray", "scalar"): scalar, (f"{core}.numeric", "_frombuffer"): _frombuffer}
    for builtins in ("__builtin__", "builtins"):
        allowed |= {(builtins, kind.__name__): kind for kind in _BUILTIN_KINDS}
        allowed |= {(builtins, kind.__name__): _no_size_argument(kind) for kind in (bytes, bytearray)}
    return allowed


class AllowListUnpickler(pickle.Unpickler):
    """Resolves a global only from `base_globals()` plus the reader's `extra` entries; anything else goes to
    `refuse`, which raises before the global is imported. Python-2 str payloads load as latin-1 text."""

    def __init__(self, file: BinaryIO, where: str, extra: dict[tuple[str, str], Any] | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self.where = where
        self._allowed = base_globals() | (extra or {})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[module, name]
        return self.refuse(module, name)

    def refuse(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"{self.where}: refusing to load {module}.{name}: only numpy arrays and builtin "
                                "containers, numbers and strings are allowed (nothing was run)")
