from datetime import datetime
from typing import get_args

import numpy as np
import pyarrow as pa
import pytest

from schemas.arrays import ArraySpec
from schemas.arrow_schema import META_SCHEMA_VERSION, arrow_schema
from schemas.rows import Reject, Row, Sample


def test_sample_schema_is_derived_from_the_model():
    schema = arrow_schema(Sample)
    assert schema.names == list(Sample.model_fields)
    assert schema.field("object_points").type == pa.list_(pa.list_(pa.float32(), 3))
    assert schema.field("hand_verts").type == pa.list_(pa.list_(pa.float32(), 3))  # MANO's 778 or another hand
    assert schema.field("hand_faces").type == pa.list_(pa.list_(pa.int32(), 3))
    assert schema.field("hand_pose").type == pa.list_(pa.float32(), 48)
    assert schema.field("object_faces").type == pa.list_(pa.list_(pa.int32(), 3))
    assert schema.field("object_point_labels").type == pa.list_(pa.int8())
    assert schema.field("split").type == pa.string()
    assert schema.field("source_index").type == pa.int64()
    assert schema.metadata[META_SCHEMA_VERSION] == str(Sample.SCHEMA_VERSION).encode()


def test_nullability_follows_optional_annotations():
    schema = arrow_schema(Sample)
    for name, info in Sample.model_fields.items():
        admits_none = type(None) in get_args(info.annotation)
        assert schema.field(name).nullable == admits_none, name


def test_reject_schema_has_a_utc_timestamp():
    assert arrow_schema(Reject).field("created_at").type == pa.timestamp("us", tz="UTC")
    assert isinstance(Reject.model_fields["created_at"].default_factory(), datetime)


def test_unsupported_annotation_names_the_field():
    class Odd(Row):
        blob: dict[str, int]

    with pytest.raises(TypeError, match=r"Odd\.blob"):
        arrow_schema(Odd)


def test_array_spec_refuses_inner_variable_axis():
    with pytest.raises(ValueError, match="only the first axis"):
        ArraySpec((3, None))
    assert ArraySpec((None, 3)).arrow_type() == pa.list_(pa.list_(pa.float32(), 3))
    assert ArraySpec((2, 3)).validate(np.zeros((2, 3))).shape == (2, 3)
