"""The `annotated` table: the join of every stage's output per sample, which grasp training reads."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from schemas.affordance import AffordanceName, normalise_affordance
from schemas.arrays import Faces3, Floats, HandMesh, ManoBetas, ManoPose, Points3, Vec3
from schemas.hand import HandModel, check_hand
from schemas.rows import SHA256_PATTERN, Row


class AnnotatedRow(Row):
    """One labelled grasp with its instruction and per-point affordance map, and the lineage of each.

    label_source: `ground_truth` (the dataset's own label, AffordPose) or the self-training origin (`validated`,
    `relabelled`, `low_confidence`, `unreviewed`). map_source: `part_labels` (the points of the parts carrying the
    affordance, where the dataset labels parts) or `model` (the affordance-map model's prediction for the instruction).
    """

    SCHEMA_VERSION: ClassVar[int] = 3  # 2: label_source `unreviewed`; 3: hand_faces, hand_model, hand_dofs,
    # mano_fit_error_mm
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("sample_id",)

    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$")
    split: Literal["train", "val", "test"]
    content_hash: str = Field(pattern=SHA256_PATTERN, description="The sample's source content hash.")
    object_id: str = Field(min_length=1)
    object_class: str = Field(min_length=1)
    affordance: AffordanceName
    label_source: Literal["ground_truth", "validated", "relabelled", "low_confidence", "unreviewed"]
    instruction: str = Field(min_length=1, max_length=400)
    instruction_generator: str = Field(min_length=1, description="openai or template (fallbacks: template).")
    prompt_version: str = Field(min_length=1)
    object_points: Points3 = Field(description="(N, 3) object surface points, metres, object frame.")
    affordance_map: Floats = Field(description="(N,) v_i in [0, 1] per object point.")
    map_source: Literal["part_labels", "model"]
    # AffordPose stores the posed hand as a GraspIt! mesh, not MANO parameters: its rows carry the mesh only.
    hand_pose: ManoPose | None = Field(None, description="(48,) MANO axis-angle: global rotation + 45 fingers.")
    hand_betas: ManoBetas | None = None
    hand_trans: Vec3 | None = None
    hand_verts: HandMesh | None = Field(None, description="(H, 3) hand vertices, metres, object frame.")
    hand_faces: Faces3 | None = Field(None, description="(F, 3) triangles of a hand that is not MANO's.")
    hand_model: HandModel = "mano"
    hand_dofs: Floats | None = Field(None, description="Joint values as the dataset stores them.")
    mano_fit_error_mm: float | None = Field(None, ge=0, description="For a non-MANO hand whose MANO parameters "
                                            "were fitted (fit-mano): the fit's mean error, mm.")
    classifier_checkpoint_sha256: str | None = Field(None, pattern=SHA256_PATTERN)
    map_checkpoint_sha256: str | None = Field(None, pattern=SHA256_PATTERN)

    @field_validator("affordance", mode="before")
    @classmethod
    def _canonical_affordance(cls, value: object) -> object:
        return normalise_affordance(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_hand(self) -> AnnotatedRow:
        check_hand(self.hand_model, self.hand_pose, self.hand_verts, self.hand_faces,
                   fitted=self.mano_fit_error_mm is not None)
        return self
