import numpy as np
import pyarrow as pa
import pytest
from pydantic import BaseModel, ValidationError

from schemas.arrays import ArraySpec, HandVerts, Points3
from schemas.arrow_convert import arrays_to_arrow, arrow_to_arrays, batch_to_dicts, rows_to_batch
from schemas.rows import Sample
from tests.factories import samples


class _Holder(BaseModel):
    points: Points3
    hand: HandVerts | None = None


def test_array_field_coerces_to_contiguous_float32():
    held = _Holder(points=[[0, 1, 2], [3, 4, 5]])
    assert held.points.dtype == np.float32 and held.points.shape == (2, 3)
    assert held.points.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(("value", "message"), [
    (np.zeros((4, 2)), "expected shape float32[Nx3], got (4, 2)"),
    (np.array([[0.0, np.nan, 0.0]]), "expected finite values"),
    (np.array([[0.0, np.inf, 0.0]]), "expected finite values"),
    ("not numbers", "expected an array of float32"),
])
def test_array_field_rejects_bad_values_naming_the_field(value, message):
    with pytest.raises(ValidationError) as info:
        _Holder(points=value)
    assert info.value.errors()[0]["loc"] == ("points",)
    assert message in str(info.value)


def test_fixed_shape_is_enforced():
    with pytest.raises(ValidationError, match=r"float32\[778x3\]"):
        _Holder(points=np.zeros((1, 3)), hand=np.zeros((777, 3)))


@pytest.mark.parametrize("spec", [
    ArraySpec((None, 3), "float32"), ArraySpec((None,), "int8"), ArraySpec((48,), "float32"),
    ArraySpec((4, 3), "float32"), ArraySpec((None, 3), "int32"),
])
def test_arrays_round_trip_with_nulls_and_slices(spec):
    rng = np.random.default_rng(0)

    def make(i):
        shape = tuple(i + 1 if d is None else d for d in spec.shape)
        return (rng.normal(size=shape) * 10).astype(spec.dtype)

    values = [make(0), None, make(2), make(3), None, make(5)]
    arrow = arrays_to_arrow(values, spec)
    assert arrow.type == spec.arrow_type()
    assert arrow.null_count == 2
    for start, stop in [(0, 6), (1, 4), (2, 6)]:
        back = arrow_to_arrays(arrow.slice(start, stop - start), spec)
        for got, want in zip(back, values[start:stop], strict=True):
            if want is None:
                assert got is None
            else:
                np.testing.assert_array_equal(got, want)


def test_rows_round_trip_through_a_record_batch():
    rows = samples(5, num_points=17)
    rows[2] = rows[2].model_copy(update={"hand_verts": np.ones((778, 3), np.float32)})
    batch = rows_to_batch(rows, Sample)
    assert batch.num_rows == 5
    back = [Sample.model_validate(d) for d in batch_to_dicts(batch, Sample)]
    for got, want in zip(back, rows, strict=True):
        assert got.sample_id == want.sample_id and got.affordance == want.affordance
        np.testing.assert_array_equal(got.object_points, want.object_points)
        np.testing.assert_array_equal(got.hand_pose, want.hand_pose)
    assert back[1].hand_verts is None and back[2].hand_verts.shape == (778, 3)


def test_batch_to_dicts_handles_chunked_columns():
    rows = samples(4)
    table = pa.Table.from_batches([rows_to_batch(rows[:2], Sample), rows_to_batch(rows[2:], Sample)])
    assert [d["sample_id"] for d in batch_to_dicts(table, Sample)] == [r.sample_id for r in rows]
