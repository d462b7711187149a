"""The preset families' names as parameter types: flows annotate their preset parameters with these, so the
Prefect form and the CLI offer exactly the registered names (models/presets.py)."""
from models.affordance_net import PRESETS as AFFORDANCE_PRESETS
from models.point_bert import PRESETS as CLASSIFIER_PRESETS

AffordancePreset = AFFORDANCE_PRESETS.literal
ClassifierPreset = CLASSIFIER_PRESETS.literal

__all__ = ["AFFORDANCE_PRESETS", "CLASSIFIER_PRESETS", "AffordancePreset", "ClassifierPreset"]
