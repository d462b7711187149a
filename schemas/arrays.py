"""Numpy-array field types for row models, each carrying the Arrow type it is stored as.

A row field annotated `Annotated[np.ndarray, ArraySpec((None, 3), "float32")]` validates any array-like
into a C-contiguous float32 array of shape (N, 3), and is stored as `list<fixed_size_list<float32, 3>>`,
a plain Arrow type that pandas, DuckDB and pyarrow read with no project code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

_ARROW_SCALARS = {
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
}


@dataclass(frozen=True)
class ArraySpec:
    """Shape and dtype of an array field. `None` in `shape` marks the one variable-length axis (the first)."""

    shape: tuple[int | None, ...]
    dtype: str = "float32"
    finite: bool = True

    def __post_init__(self) -> None:
        if self.dtype not in _ARROW_SCALARS:
            raise ValueError(f"ArraySpec dtype {self.dtype!r} not in {sorted(_ARROW_SCALARS)}")
        if None in self.shape[1:]:
            raise ValueError(f"ArraySpec shape {self.shape}: only the first axis may be variable")

    @property
    def fixed_shape(self) -> tuple[int, ...]:
        """Trailing axes of fixed size (all axes when none is variable)."""
        return tuple(d for d in self.shape if d is not None)

    @property
    def variable(self) -> bool:
        return bool(self.shape) and self.shape[0] is None

    def describe(self) -> str:
        dims = "x".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"

    def arrow_type(self) -> pa.DataType:
        """Nested fixed-size lists for fixed axes, an outer variable list for a variable first axis."""
        arrow = _ARROW_SCALARS[self.dtype]
        for size in reversed(self.fixed_shape):
            arrow = pa.list_(arrow, size)
        return pa.list_(arrow) if self.variable else arrow

    def validate(self, value: Any) -> np.ndarray:
        try:
            array = np.ascontiguousarray(value, dtype=self.dtype)
        except (TypeError, ValueError) as exc:
            raise PydanticCustomError("array_type", "expected an array of {dtype}: {error}",
                                      {"dtype": self.dtype, "error": str(exc)}) from None
        if array.ndim != len(self.shape) or any(
            want is not None and got != want for want, got in zip(self.shape, array.shape, strict=True)
        ):
            raise PydanticCustomError("array_shape", "expected shape {want}, got {got}",
                                      {"want": self.describe(), "got": tuple(array.shape)})
        if self.finite and array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.flatnonzero(~np.isfinite(array.reshape(-1)))[0])
            raise PydanticCustomError("array_finite", "expected finite values, got {value} at flat index {i}",
                                      {"value": float(array.reshape(-1)[bad]), "i": bad})
        return array

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda a: a.tolist(), when_used="json"
            ),
        )

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        item: dict[str, Any] = {"type": "number" if self.dtype.startswith("float") else "integer"}
        for size in reversed(self.shape):
            item = {"type": "array", "items": item}
            if size is not None:
                item |= {"minItems": size, "maxItems": size}
        return item | {"description": self.describe()}


Points3 = Annotated[np.ndarray, ArraySpec((None, 3), "float32")]
"""(N, 3) float32 points in metres."""
Faces3 = Annotated[np.ndarray, ArraySpec((None, 3), "int32")]
"""(F, 3) int32 triangle vertex indices."""
Labels = Annotated[np.ndarray, ArraySpec((None,), "int8")]
"""(N,) int8 per-point or per-vertex affordance label ids."""
Floats = Annotated[np.ndarray, ArraySpec((None,), "float32")]
"""(N,) float32 per-point values, e.g. affordance probabilities."""
HandVerts = Annotated[np.ndarray, ArraySpec((778, 3), "float32")]
"""(778, 3) float32 MANO hand vertices in metres."""
HandMesh = Annotated[np.ndarray, ArraySpec((None, 3), "float32")]
"""(H, 3) float32 posed hand vertices in metres: MANO's 778 or a dataset's own hand mesh (see schemas.hand)."""
ManoPose = Annotated[np.ndarray, ArraySpec((48,), "float32")]
"""(48,) float32 axis-angle MANO pose: global rotation (3) + 15 finger joints (45)."""
ManoBetas = Annotated[np.ndarray, ArraySpec((10,), "float32")]
"""(10,) float32 MANO shape coefficients."""
Vec3 = Annotated[np.ndarray, ArraySpec((3,), "float32")]
"""(3,) float32 vector, e.g. a translation in metres."""
