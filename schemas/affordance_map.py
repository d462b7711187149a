"""The affordance-map table: one per-point map per sample of the target datasets, and what produced it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from schemas.affordance import AffordanceName, normalise_affordance
from schemas.arrays import Floats
from schemas.rows import SHA256_PATTERN, Row


class AffordanceMapRow(Row):
    """v_i in [0, 1] for each of the sample's `object_points` (same order), predicted from the object points and
    `instruction` by the model whose checkpoint hashes to `checkpoint_sha256`."""

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("sample_id",)

    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$", description="oakink, grab, ho3d, ...")
    object_class: str = Field(min_length=1, max_length=128)
    affordance: AffordanceName = Field(description="The sample's affordance label the instruction asks for.")
    instruction: str = Field(min_length=1, max_length=400, description="Instruction the map was predicted for.")
    probabilities: Floats = Field(description="(N,) v_i per object point, in [0, 1].")
    checkpoint_sha256: str = Field(pattern=SHA256_PATTERN, description="sha256 of the model checkpoint file.")
    text_encoder: str = Field(min_length=1, max_length=128, description="Text encoder and its weights' hash.")

    @field_validator("affordance", mode="before")
    @classmethod
    def _canonical_affordance(cls, value: object) -> object:
        return normalise_affordance(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _probabilities_in_range(self) -> AffordanceMapRow:
        p = self.probabilities
        if len(p) == 0 or not ((p >= 0) & (p <= 1)).all():
            raise ValueError(f"probabilities: expected a non-empty map in [0, 1] (got {len(p)} values)")
        return self
