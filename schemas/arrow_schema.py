"""Arrow schemas derived from the row models, so a table's layout is written down once."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pyarrow as pa

from schemas.arrays import ArraySpec
from schemas.rows import Row

META_ROW_MODEL = b"afford.row_model"
META_SCHEMA_VERSION = b"afford.schema_version"

_SCALARS: dict[type, pa.DataType] = {
    str: pa.string(),
    int: pa.int64(),
    float: pa.float64(),
    bool: pa.bool_(),
    datetime: pa.timestamp("us", tz="UTC"),
}


def row_model_name(model: type[Row]) -> str:
    return f"{model.__module__}.{model.__qualname__}"


@cache
def array_specs(model: type[Row]) -> dict[str, ArraySpec]:
    """The array-valued fields of a row model and their specs."""
    hints = typing.get_type_hints(model, include_extras=True)
    specs = {}
    for name in model.model_fields:
        spec = _find_spec(hints[name])
        if spec is not None:
            specs[name] = spec
    return specs


@cache
def arrow_schema(model: type[Row]) -> pa.Schema:
    """Arrow schema of a row model: one column per field, in declaration order, with the model's name and
    schema version in the schema metadata."""
    hints = typing.get_type_hints(model, include_extras=True)
    fields = []
    for name, info in model.model_fields.items():
        arrow_type, nullable = _arrow_type(hints[name], f"{model.__name__}.{name}")
        # A field with a default is optional to give, but only a None-admitting annotation makes it nullable.
        fields.append(pa.field(name, arrow_type, nullable=nullable, metadata=_field_meta(info.description)))
    return pa.schema(fields, metadata={
        META_ROW_MODEL: row_model_name(model).encode(),
        META_SCHEMA_VERSION: str(model.SCHEMA_VERSION).encode(),
    })


def _field_meta(description: str | None) -> dict[bytes, bytes] | None:
    return {b"description": description.encode()} if description else None


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) != len(get_args(annotation))
    return annotation, False


def _find_spec(annotation: Any) -> ArraySpec | None:
    inner, _ = _strip_optional(annotation)
    if get_origin(inner) is Annotated:
        return next((m for m in inner.__metadata__ if isinstance(m, ArraySpec)), None)
    return None


def _arrow_type(annotation: Any, where: str) -> tuple[pa.DataType, bool]:
    inner, nullable = _strip_optional(annotation)
    spec = _find_spec(inner)
    if spec is not None:
        return spec.arrow_type(), nullable
    if get_origin(inner) is Annotated:
        inner = get_args(inner)[0]
    if get_origin(inner) is Literal:
        kinds = {type(v) for v in get_args(inner)}
        if len(kinds) != 1 or next(iter(kinds)) not in _SCALARS:
            raise TypeError(f"{where}: Literal values must share one scalar type, got {kinds}")
        return _SCALARS[next(iter(kinds))], nullable
    if isinstance(inner, type) and issubclass(inner, Enum):
        return pa.string(), nullable
    if get_origin(inner) is list:
        (item,) = get_args(inner)
        item_type, _ = _arrow_type(item, where)
        return pa.list_(item_type), nullable
    if inner in _SCALARS:
        return _SCALARS[inner], nullable
    raise TypeError(f"{where}: no Arrow type for annotation {annotation!r}")
