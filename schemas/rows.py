"""Row models: one pydantic model per table; the Arrow schema is derived from it (schemas.arrow_schema).

Units and frame of every geometric field: metres, object-centred (the object's mesh centroid at the origin).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.affordance import AffordanceName, normalise_affordance
from schemas.arrays import Faces3, Floats, HandMesh, Labels, ManoBetas, ManoPose, Points3, Vec3
from schemas.hand import HandModel, check_hand
from schemas.text import REASON_LIMIT, bounded_reason

SHA256_PATTERN = r"^[0-9a-f]{64}$"
SAMPLE_ID_PATTERN = r"^[a-z0-9_\-]+-[0-9a-f]{16}$"


class Row(BaseModel):
    """Base of every table row.

    `SCHEMA_VERSION` is bumped whenever a field is added, removed or changes meaning; readers refuse a
    table written with another version. `TABLE_KEY` names the columns that identify a row: writing a row
    whose key is already in the table replaces it (no duplicates on re-runs).
    """

    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("sample_id",)

    sample_id: str = Field(pattern=SAMPLE_ID_PATTERN, description="Stable id from (dataset, path, index).")
    stage_version: str = Field(min_length=1, max_length=64, description="Version of the code that wrote it.")


class Sample(Row):
    """One hand-object grasp, ingested from a dataset into the canonical frame."""

    SCHEMA_VERSION: ClassVar[int] = 2  # 2: hand_verts of any length, hand_faces, hand_model, hand_dofs

    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$", description="affordpose, oakink, grab, ho3d, ...")
    split: Literal["train", "val", "test"]
    source_path: str = Field(min_length=1, description="Source file, relative to the dataset root.")
    source_index: int = Field(0, ge=0, description="Index of the sample inside its source file (frame).")
    content_hash: str = Field(pattern=SHA256_PATTERN, description="sha256 of the source bytes.")
    object_id: str = Field(min_length=1)
    object_category: str = Field(min_length=1, description="Object class, e.g. mug.")
    object_mesh_path: str | None = Field(None, description="Object mesh, relative to the dataset root.")
    object_vertices: Points3 | None = Field(None, description="(V, 3) mesh vertices, metres.")
    object_faces: Faces3 | None = Field(None, description="(F, 3) triangles indexing object_vertices.")
    object_vertex_labels: Labels | None = Field(None, description="(V,) affordance label id per vertex.")
    object_points: Points3 = Field(description="(N, 3) points sampled on the object surface, metres.")
    object_point_labels: Labels | None = Field(None, description="(N,) affordance label id per point.")
    hand_side: Literal["right", "left"] = "right"
    hand_pose: ManoPose | None = Field(None, description="(48,) MANO axis-angle: global rot + 45 finger.")
    hand_betas: ManoBetas | None = Field(None, description="(10,) MANO shape.")
    hand_trans: Vec3 | None = Field(None, description="(3,) MANO translation, metres.")
    hand_verts: HandMesh | None = Field(None, description="(H, 3) posed hand vertices, metres: MANO's 778, "
                                                          "or the dataset's own hand mesh (hand_model).")
    hand_faces: Faces3 | None = Field(None, description="(F, 3) triangles of a hand that is not MANO's.")
    hand_model: HandModel = Field("mano", description="mano, or graspit_manohand (AffordPose: 946 vertices).")
    hand_dofs: Floats | None = Field(None, description="Joint values as the dataset stores them (AffordPose "
                                                       "`dofs`: 16 GraspIt! values).")
    affordance: AffordanceName | None = Field(None, description="Ground-truth affordance, when labelled.")
    intent: str | None = Field(None, description="Dataset intent (OakInk: use/hold/liftup/handover).")

    @field_validator("affordance", mode="before")
    @classmethod
    def _canonical_affordance(cls, value: object) -> object:
        return normalise_affordance(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Sample:
        if self.object_points.shape[0] == 0:
            raise ValueError("object_points is empty")
        check_hand(self.hand_model, self.hand_pose, self.hand_verts, self.hand_faces)
        if self.hand_pose is not None and (self.hand_betas is None or self.hand_trans is None):
            raise ValueError("hand_pose given without hand_betas and hand_trans")
        _check_same_length("object_point_labels", self.object_point_labels, "object_points", self.object_points)
        _check_same_length("object_vertex_labels", self.object_vertex_labels, "object_vertices",
                           self.object_vertices)
        if self.object_faces is not None:
            if self.object_vertices is None:
                raise ValueError("object_faces given without object_vertices")
            if self.object_faces.size and (self.object_faces.min() < 0
                                           or self.object_faces.max() >= len(self.object_vertices)):
                raise ValueError(f"object_faces index outside 0..{len(self.object_vertices) - 1}")
        return self


def _check_same_length(name: str, values: object, other_name: str, other: object) -> None:
    if values is None:
        return
    if other is None:
        raise ValueError(f"{name} given without {other_name}")
    if len(values) != len(other):
        raise ValueError(f"{name} has {len(values)} entries but {other_name} has {len(other)}")


class Reject(Row):
    """An input that a stage could not process, and why. input count = output rows + rejects."""

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("stage", "sample_id")

    stage: str = Field(min_length=1, description="Stage that rejected it, e.g. ingest.")
    source: str = Field(min_length=1, description="File (or table) the input came from.")
    reason: str = Field(min_length=1, description="What was wrong, naming the field.")
    field: str | None = Field(None, description="The offending field, when one is to blame.")
    dataset: str | None = None
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("reason", "source", "field", mode="before")
    @classmethod
    def _bounded(cls, value: object) -> object:
        # Every producer is covered here: a reason quoting a 50 MB field, or one holding terminal escapes,
        # is cut to its head (file and field come first) and escaped before it reaches a table or a UI.
        return bounded_reason(value, REASON_LIMIT) if isinstance(value, str) else value


class PseudoLabel(Row):
    """A classifier's label for one sample in one self-training cycle, and whether the confidence rule took it."""

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("cycle", "sample_id")

    cycle: int = Field(ge=0, description="Self-training cycle that produced the label.")
    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$")
    predicted: AffordanceName = Field(description="Predicted affordance.")
    probabilities: Floats = Field(description="(9,) softmax probabilities in schemas.affordance order.")
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the predicted class.")
    score: float = Field(description="The statistic the rule thresholds (confidence or logit z-score).")
    threshold: float = Field(description="The rule's threshold for this sample.")
    accepted: bool = Field(description="Whether the rule accepted the label.")
    rule: str = Field(min_length=1, description="Confidence rule and k, e.g. class_conditional(k=3).")
    checkpoint_sha256: str = Field(pattern=SHA256_PATTERN, description="Classifier checkpoint that labelled it.")

    @field_validator("probabilities")
    @classmethod
    def _nine_probabilities(cls, value: object) -> object:
        if len(value) != 9 or abs(float(value.sum()) - 1.0) > 1e-3:
            raise ValueError(f"expected 9 probabilities summing to 1, got {len(value)} summing to {value.sum():.4f}")
        return value


class AffordanceLabel(Row):
    """The affordance a target sample carries after self-training, and where it came from.

    origin: `validated` (accepted by the confidence rule in a cycle whose review passed the quality gate),
    `relabelled` (a reviewer gave the class), `low_confidence` (never accepted: the last model's guess), or
    `unreviewed` (a sample changed since the last full run, accepted by that run's classifier and rule; no person
    has reviewed it yet: the next full run's review queue can draw it).
    """

    SCHEMA_VERSION: ClassVar[int] = 2  # 2: origin `unreviewed`

    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$")
    affordance: AffordanceName
    origin: Literal["validated", "relabelled", "low_confidence", "unreviewed"]
    cycle: int = Field(ge=0, description="Cycle whose model or review produced the label.")
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of the label under that cycle's model.")
    checkpoint_sha256: str = Field(pattern=SHA256_PATTERN, description="Classifier checkpoint of that cycle.")


class ReviewDecision(Row):
    """The final state of one review-queue item, exported from the review store (which keeps the full audit
    trail) when its cycle resumes; training lineage reads this table."""

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("cycle", "sample_id")

    cycle: int = Field(ge=0)
    dataset: str = Field(min_length=1)
    object_category: str = Field(min_length=1)
    predicted: AffordanceName
    confidence: float = Field(ge=0.0, le=1.0)
    state: Literal["pending", "accepted", "rejected", "relabelled", "skipped", "disputed"]
    label: AffordanceName | None = Field(None, description="The class it joins with: predicted or the reviewer's.")
    reviewer: str | None = None
    comment: str = ""
    decided_at: str | None = None
