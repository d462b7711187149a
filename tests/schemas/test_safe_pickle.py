"""The shared allow-list unpickler: numpy data and builtin containers load under every protocol; any other
global is refused by name before it runs, and the allowed callables refuse misuse."""

import io
import os
import pickle

import numpy as np
import pytest

from schemas.safe_pickle import AllowListUnpickler, UnsafePickleError, base_globals


def _load(payload: bytes, where: str = "meta.pkl"):
    return AllowListUnpickler(io.BytesIO(payload), where).load()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_data_and_containers_round_trip(protocol):
    value = {"pose": np.arange(6, dtype=np.float32).reshape(2, 3), "ids": [1, 2], "name": "mug", "b": b"\x00\xff",
             "scalar": np.float64(2.5), "tags": {"a"}, "frozen": frozenset({3}), "z": 1 + 2j}
    loaded = _load(pickle.dumps(value, protocol=protocol))
    np.testing.assert_array_equal(loaded["pose"], value["pose"])
    assert loaded["pose"].dtype == np.float32
    assert {k: v for k, v in loaded.items() if k != "pose"} == {k: v for k, v in value.items() if k != "pose"}


class _Call:
    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_foreign_global_is_refused_by_name_and_not_run(tmp_path, protocol):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"x": _Call(os.system, (f"touch {marker}",))}, protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"meta\.pkl: refusing to load (posix|nt)\.system"):
        _load(payload)
    assert not marker.exists()


def test_the_allowed_callables_refuse_misuse():
    allowed = base_globals()
    with pytest.raises(UnsafePickleError, match="latin-1 text only"):
        allowed["_codecs", "encode"]("text", "rot13")
    with pytest.raises(UnsafePickleError, match="dtype"):
        allowed["numpy._core.numeric", "_frombuffer"](b"\x00" * 8, np.dtype(object), (1,))


def test_a_reader_adds_its_own_globals_and_reports_its_own_way():
    class Reader(AllowListUnpickler):
        def refuse(self, module, name):
            raise KeyError(f"{module}.{name}")

    payload = pickle.dumps(_Call(len, ("abc",)), protocol=4)
    assert Reader(io.BytesIO(payload), "f", {("builtins", "len"): len}).load() == 3
    with pytest.raises(KeyError, match=r"builtins\.len"):
        Reader(io.BytesIO(payload), "f").load()
