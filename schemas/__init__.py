"""Row models, the table manifest, Arrow schemas derived from them, and settings."""

from schemas.affordance import AFFORDANCES, AFFORDPOSE_LABEL_IDS, NUM_AFFORDANCES, affordance_index
from schemas.arrow_schema import arrow_schema
from schemas.ids import hash_bytes, hash_file, make_sample_id
from schemas.manifest import Lineage, ShardInfo, TableManifest
from schemas.rows import Reject, Row, Sample
from schemas.settings import AffordSettings

__all__ = [
    "AFFORDANCES",
    "AFFORDPOSE_LABEL_IDS",
    "NUM_AFFORDANCES",
    "AffordSettings",
    "Lineage",
    "Reject",
    "Row",
    "Sample",
    "ShardInfo",
    "TableManifest",
    "affordance_index",
    "arrow_schema",
    "hash_bytes",
    "hash_file",
    "make_sample_id",
]
