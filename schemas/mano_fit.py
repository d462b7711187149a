"""The MANO-fit table: MANO parameters fitted to a dataset's own hand mesh (AffordPose's GraspIt! ManoHand),
and how far the fitted MANO surface lies from that mesh."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from schemas.arrays import ManoBetas, ManoPose, Vec3
from schemas.rows import Row

# A fit joins the annotated table (and so trains the MANO-parameter generator) when its mean error is at most
# this. Why 5 mm: it is the contact distance the evaluation counts (GraspTTA's), so a usable fit moves the hand
# surface on average less than the distance at which a touch is counted; and GraspIt!-style hands built from known
# MANO grasps fit back at 1.7-3.8 mm (tests/tasks/fit_mano), so 5 mm keeps good fits with a margin.
USABLE_FIT_MEAN_MM = 5.0


class ManoFitRow(Row):
    """One fitted hand, keyed by the sample it was fitted to. Errors are distances (mm) from each vertex of the
    sample's hand mesh to the fitted MANO surface, in the sample's object frame."""

    SCHEMA_VERSION: ClassVar[int] = 1
    TABLE_KEY: ClassVar[tuple[str, ...]] = ("sample_id",)

    dataset: str = Field(pattern=r"^[a-z0-9_\-]+$")
    hand_model: str = Field(min_length=1, description="The model of the hand that was fitted (graspit_manohand).")
    hand_pose: ManoPose = Field(description="(48,) MANO axis-angle, flat hand mean.")
    hand_betas: ManoBetas
    hand_trans: Vec3 = Field(description="(3,) metres, object frame.")
    mean_error_mm: float = Field(ge=0, description="Mean distance, hand-mesh vertex to fitted MANO surface.")
    max_error_mm: float = Field(ge=0, description="Largest such distance.")
    steps: int = Field(ge=1, description="Optimiser steps taken.")
