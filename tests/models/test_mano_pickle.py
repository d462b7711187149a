"""MANO pickle IO: official-style files (chumpy + scipy.sparse, Python-2 layout) load without chumpy, anything
else a pickle could run is refused, shapes are checked, and our own files round-trip exactly."""

from __future__ import annotations

import os
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from models.mano_pickle import (
    FIELDS,
    ManoParams,
    UnsafePickleError,
    load_mano_pickle,
    mano_file,
    save_mano_pickle,
)
from tests.models import random_mano_params


@pytest.fixture(scope="module")
def params() -> ManoParams:
    return random_mano_params(seed=1)


# ---- a throwaway `chumpy`, importable only while a test pickles with it ---------------------------------------

@contextmanager
def fake_chumpy(marker: Path | None = None) -> Iterator[types.SimpleNamespace]:
    """Registers modules chumpy, chumpy.ch (class Ch) and chumpy.ch_ops (class add) in sys.modules.
    If the loader ever ran their code, `marker` would be created."""

    class Ch:
        def __setstate__(self, state: dict[str, Any]) -> None:  # what real chumpy would run on load
            if marker is not None:
                marker.touch()
            self.__dict__.update(state)

    class add(Ch):  # chumpy's own spelling
        pass

    package, ch, ch_ops = (types.ModuleType(name) for name in ("chumpy", "chumpy.ch", "chumpy.ch_ops"))
    for cls, module in ((Ch, ch), (add, ch_ops)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    package.ch, package.ch_ops = ch, ch_ops
    with pytest.MonkeyPatch.context() as mp:
        for module in (package, ch, ch_ops):
            mp.setitem(sys.modules, module.__name__, module)
        yield types.SimpleNamespace(Ch=Ch, add=add)


def chumpy_object(cls: type, **attrs: Any) -> Any:
    """An instance carrying what chumpy's __getstate__ pickles: its terms plus bookkeeping attributes."""
    obj = cls.__new__(cls)
    obj.__dict__.update({"_dirty_vars": {"x"}, "_itr": None, "_depends_on_deps": {}, "_make_dense": False,
                         "_make_sparse": False, **attrs})
    return obj


def official_style_dict(params: ManoParams, chumpy: types.SimpleNamespace) -> dict[str, Any]:
    """What MANO_RIGHT.pkl holds: chumpy values, a csc J_regressor, uint32 faces and extra keys."""
    raw = {name: np.array(value) for name, value in params.to_dict().items()}
    raw["shapedirs"] = chumpy_object(chumpy.Ch, x=raw["shapedirs"], label="shapedirs")
    raw["posedirs"] = chumpy_object(chumpy.Ch, x=chumpy_object(chumpy.Ch, x=raw["posedirs"]))  # Ch inside a Ch
    raw["J_regressor"] = sp.csc_matrix(raw["J_regressor"])
    raw["f"] = raw["f"].astype(np.uint32)
    raw["bs_type"], raw["bs_style"] = "lrotmin", "lbs"
    raw["J"] = chumpy_object(chumpy.add, a=chumpy_object(chumpy.Ch, x=np.ones(3)), b=np.ones(3))  # an expression
    raw["hands_coeffs"] = np.zeros((4, 45))
    return raw


def assert_same(loaded: ManoParams, expected: ManoParams) -> None:
    for name, (_, dtype) in FIELDS.items():
        value = getattr(loaded, name)
        assert isinstance(value, np.ndarray) and value.dtype == dtype, name
        np.testing.assert_array_equal(value, getattr(expected, name), err_msg=name)


# ---- official-style files ------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", [0, 2])
def test_chumpy_and_sparse_load_as_dense_arrays_without_chumpy(tmp_path: Path, params: ManoParams,
                                                                protocol: int) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    with fake_chumpy() as chumpy:
        path.write_bytes(pickle.dumps(official_style_dict(params, chumpy), protocol=protocol))
    assert "chumpy" not in sys.modules
    assert b"chumpy.ch" in path.read_bytes() and b"csc_matrix" in path.read_bytes()
    assert_same(load_mano_pickle(path), params)


class Py2StylePickler(pickle._Pickler):
    """Writes what Python 2.7 with numpy 1 and scipy 0.x wrote: GLOBAL opcodes with the old module names, and
    byte strings / text as `str` opcodes that Python 3 reads back as latin-1 text."""

    OLD_MODULES: ClassVar[dict[str, str]] = {
        "numpy._core.multiarray": "numpy.core.multiarray", "scipy.sparse._csc": "scipy.sparse.csc",
        "builtins": "__builtin__",
    }
    dispatch = pickle._Pickler.dispatch.copy()

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = self.OLD_MODULES.get(obj.__module__, obj.__module__)
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)

    def save_py2_str(self, obj: bytes | str) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        header = (pickle.SHORT_BINSTRING + bytes([len(data)]) if len(data) < 256
                  else pickle.BINSTRING + struct.pack("<i", len(data)))
        self.write(header + data)
        self.memoize(obj)

    dispatch[type] = save_global
    dispatch[types.FunctionType] = save_global
    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def test_python2_layout_loads(tmp_path: Path, params: ManoParams) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    with fake_chumpy() as chumpy, path.open("wb") as fh:
        Py2StylePickler(fh, protocol=2).dump(official_style_dict(params, chumpy))
    listing = "\n".join(f"{op.name} {arg}" for op, arg, _ in pickletools.genops(path.read_bytes()))
    for expected in ("GLOBAL numpy.core.multiarray _reconstruct", "GLOBAL __builtin__ set",
                     "GLOBAL scipy.sparse.csc csc_matrix", "GLOBAL chumpy.ch Ch", "BINSTRING"):
        assert expected in listing  # the file really has the Python-2 layout under test
    assert "UNICODE" not in listing and "_codecs" not in listing
    assert_same(load_mano_pickle(path), params)


def test_loader_never_runs_chumpy_even_when_importable(tmp_path: Path, params: ManoParams) -> None:
    path, marker = tmp_path / "MANO_RIGHT.pkl", tmp_path / "chumpy_code_ran"
    with fake_chumpy(marker) as chumpy:
        path.write_bytes(pickle.dumps(official_style_dict(params, chumpy), protocol=2))
        loaded = load_mano_pickle(path)
    assert not marker.exists()
    assert_same(loaded, params)


def test_chumpy_expression_in_a_used_field_is_named(tmp_path: Path, params: ManoParams) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    with fake_chumpy() as chumpy:
        raw = official_style_dict(params, chumpy)
        raw["shapedirs"] = chumpy_object(chumpy.add, a=raw["shapedirs"], b=raw["shapedirs"])
        path.write_bytes(pickle.dumps(raw, protocol=2))
    with pytest.raises(ValueError, match=r"'shapedirs'.*chumpy\.ch_ops\.add"):
        load_mano_pickle(path)


@pytest.mark.parametrize("to_sparse", [sp.csr_matrix, sp.coo_matrix, sp.csc_array, sp.coo_array])
def test_other_sparse_formats_load(tmp_path: Path, params: ManoParams, to_sparse: Any) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    raw = params.to_dict() | {"J_regressor": to_sparse(params.J_regressor)}
    path.write_bytes(pickle.dumps(raw, protocol=2))
    np.testing.assert_array_equal(load_mano_pickle(path).J_regressor, params.J_regressor)


def test_sparse_index_out_of_range_is_refused(tmp_path: Path, params: ManoParams) -> None:
    regressor = sp.csc_matrix(params.J_regressor)
    regressor.indices[0] = 16  # one past the last joint row; scipy does not check on assignment
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(params.to_dict() | {"J_regressor": regressor}, protocol=2))
    with pytest.raises(ValueError, match=r"'J_regressor'.*out of range"):
        load_mano_pickle(path)


# ---- refusing what a pickle could run ------------------------------------------------------------------------

class Payload:
    """Unpickling this runs `call(*args)`, which would create the marker file."""

    def __init__(self, call: Any, args: tuple[Any, ...]) -> None:
        self.call, self.args = call, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.call, self.args


def payloads(marker: Path) -> dict[str, Payload]:
    return {
        "system": Payload(os.system, (f"touch {marker}",)),
        "Popen": Payload(subprocess.Popen, (["touch", str(marker)],)),
        "eval": Payload(eval, (f"__import__('pathlib').Path({str(marker)!r}).touch()",)),
    }


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("name", ["system", "Popen", "eval"])
def test_code_execution_is_refused(tmp_path: Path, name: str, protocol: int) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({"v_template": payloads(marker)[name]}, protocol=protocol))
    with pytest.raises(UnsafePickleError, match=name) as info:
        load_mano_pickle(path)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_payload_hidden_inside_a_chumpy_value_is_refused(tmp_path: Path, params: ManoParams) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "MANO_RIGHT.pkl"
    with fake_chumpy() as chumpy:
        raw = official_style_dict(params, chumpy)
        raw["shapedirs"] = chumpy_object(chumpy.Ch, x=payloads(marker)["system"])
        path.write_bytes(pickle.dumps(raw, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"posix\.system|nt\.system"):
        load_mano_pickle(path)
    assert not marker.exists()


def test_unsafe_error_is_an_unpickling_error() -> None:
    assert issubclass(UnsafePickleError, pickle.UnpicklingError)


def test_corrupt_file_names_the_path(tmp_path: Path, params: ManoParams) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    save_mano_pickle(path, params)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a readable MANO pickle") as info:
        load_mano_pickle(path)
    assert str(path) in str(info.value)


# ---- shapes and values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "bad"), [("posedirs", np.zeros((778, 3, 134))), ("hands_mean", np.zeros(44)),
                                            ("f", np.zeros((1538, 4), dtype=np.int64))])
def test_wrong_shape_is_refused_naming_the_field(tmp_path: Path, params: ManoParams, field: str,
                                                 bad: np.ndarray) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(params.to_dict() | {field: bad}, protocol=2))
    message = f"{path}: ManoParams.{field}: expected shape {FIELDS[field][0]}, got {bad.shape}"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_mano_pickle(path)


def test_sparse_regressor_of_wrong_shape_is_refused(tmp_path: Path, params: ManoParams) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps(params.to_dict() | {"J_regressor": sp.csc_matrix((21, 778))}, protocol=2))
    with pytest.raises(ValueError, match=r"J_regressor: expected shape \(16, 778\), got sparse \(21, 778\)"):
        load_mano_pickle(path)


def test_missing_field_is_named(tmp_path: Path, params: ManoParams) -> None:
    path = tmp_path / "MANO_RIGHT.pkl"
    raw = params.to_dict()
    del raw["weights"]
    path.write_bytes(pickle.dumps(raw, protocol=2))
    with pytest.raises(ValueError, match=r"missing MANO fields \['weights'\]"):
        load_mano_pickle(path)


@pytest.mark.parametrize(("field", "edit", "message"), [
    ("weights", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 5, np.nan, a), "finite"),
    ("f", lambda a: a + 778, r"indices in \[0, 778\)"),
    ("f", lambda a: a.astype(np.float64), "expected integers"),
    ("kintree_table", lambda a: np.array([[-1, *a[0, 1:4], 9, *a[0, 5:]], a[1]]), "parent of joint 4"),
    ("kintree_table", lambda a: np.array([[7, *a[0, 1:]], a[1]]), "root parent"),
])
def test_bad_values_are_refused_naming_the_field(params: ManoParams, field: str, edit: Any, message: str) -> None:
    arrays = params.to_dict()
    arrays[field] = edit(np.array(arrays[field]))
    with pytest.raises(ValueError, match=rf"ManoParams\.{field}: .*{message}"):
        ManoParams(**arrays)


def test_params_are_read_only_copies(params: ManoParams) -> None:
    source = np.array(params.v_template)
    copy = ManoParams(**(params.to_dict() | {"v_template": source}))
    assert not copy.v_template.flags.writeable and source.flags.writeable
    source[0, 0] += 1.0
    assert copy.v_template[0, 0] == params.v_template[0, 0]


@pytest.mark.parametrize("root_parent", [-1, 2**32 - 1])
def test_save_load_round_trip_is_exact(tmp_path: Path, root_parent: int) -> None:
    params = random_mano_params(seed=2, root_parent=root_parent)
    path = tmp_path / "MANO_LEFT.pkl"
    save_mano_pickle(path, params)
    assert pickletools.genops(path.read_bytes()).__next__()[1] == 2  # protocol 2, as the official files
    assert sorted(os.listdir(tmp_path)) == ["MANO_LEFT.pkl"]  # no temporary file left behind
    loaded = load_mano_pickle(path)
    assert_same(loaded, params)
    assert loaded.parents == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]


def test_mano_file(tmp_path: Path, params: ManoParams) -> None:
    save_mano_pickle(tmp_path / "MANO_RIGHT.pkl", params)
    assert mano_file(tmp_path, "right") == tmp_path / "MANO_RIGHT.pkl"
    with pytest.raises(FileNotFoundError, match=r"MANO_LEFT\.pkl") as info:
        mano_file(tmp_path, "left")
    assert str(tmp_path / "MANO_LEFT.pkl") in str(info.value) and "generated hand" in str(info.value)
    with pytest.raises(ValueError, match="side"):
        mano_file(tmp_path, "both")
