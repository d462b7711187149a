"""The instructions table: one language instruction per sample, and what produced it."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from schemas.affordance import AffordanceName, normalise_affordance
from schemas.rows import Row


class InstructionRow(Row):
    """The instruction a sample trains with: variant `variant` of the k generated for its
    (object_class, affordance, part) key.

    generator/model/prompt_version name what wrote the text; `fallback` is True when the LLM's answer was
    unusable (or the endpoint unavailable) and the offline template wrote it instead, `fallback_reason` says why.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("sample_id",)

    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$", description="affordpose, oakink, grab, ho3d, ...")
    object_class: str = Field(min_length=1, max_length=128, description="Object class, e.g. mug.")
    affordance: AffordanceName = Field(description="Affordance the instruction asks for.")
    part: str | None = Field(None, max_length=128, description="Object part named by the instruction, when known.")
    instruction: str = Field(min_length=1, max_length=400, description="Short imperative instruction.")
    variant: int = Field(ge=0, description="Which of the key's k instructions: stable hash(sample_id) % k.")
    generator: str = Field(min_length=1, max_length=64, description="openai or template.")
    model: str = Field(min_length=1, max_length=256, description="Model that wrote the text (template: template).")
    prompt_version: str = Field(min_length=1, max_length=64, description="Prompt (or template set) version.")
    fallback: bool = Field(description="True when the template replaced an unusable LLM answer.")
    fallback_reason: str | None = Field(None, max_length=1000, description="Why the LLM answer was not used.")

    @field_validator("affordance", mode="before")
    @classmethod
    def _canonical_affordance(cls, value: object) -> object:
        return normalise_affordance(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _reason_iff_fallback(self) -> InstructionRow:
        if self.fallback and not self.fallback_reason:
            raise ValueError("fallback is True but fallback_reason is empty")
        if not self.fallback and self.fallback_reason:
            raise ValueError("fallback_reason given but fallback is False")
        return self
