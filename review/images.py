"""Pictures for the review queue: one two-view PNG per queue item, named by its position in the queue, and the
item's 3-D geometry beside it (review/geometry.py).

The web app serves `<images_dir>/<cycle>/<position>.png` (see `cycle_images_dir`); a flow renders a cycle's
queue with `render_queue_images(items, tables, hand_faces, cycle_images_dir(images_dir, cycle))`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from review.geometry import GeometryTooLarge, geometry_path, write_geometry
from schemas.hand import hand_faces_for
from schemas.review import QueueItem
from schemas.rows import Sample


def cycle_images_dir(images_dir: Path, cycle: int) -> Path:
    """Folder of one cycle's pictures; the web app looks for `<position>.png` there."""
    return Path(images_dir) / str(cycle)


def image_path(out_dir: Path, position: int) -> Path:
    return Path(out_dir) / f"{position}.png"


def render_queue_images(items: Sequence[QueueItem], sample_tables: Sequence[Path], hand_faces: np.ndarray,
                        out_dir: Path) -> dict[str, Path]:
    """Draw every queue item's object and hand from two views into `out_dir/<position>.png`.

    Pictures already present are kept (re-running after a crash only draws what is missing); the tables are
    scanned once, and only when something is missing. hand_faces: (F, 3) int, the MANO topology (a row with
    its own hand mesh, AffordPose's, is drawn with its own faces).
    Returns sample_id -> PNG path for every item. A sample in no table is a ValueError naming it.
    """
    paths = {item.sample_id: image_path(out_dir, item.position) for item in items}
    missing = {item.sample_id: item for item in items
               if not paths[item.sample_id].is_file() or not _geometry_done(out_dir, item.position)}
    found: set[str] = set()
    for sample in _find_samples(sample_tables, set(missing)):
        item = missing[sample.sample_id]
        if not paths[sample.sample_id].is_file():
            _render_item(item, sample, hand_faces, paths[sample.sample_id])
        try:
            write_geometry(item, sample, hand_faces, out_dir)
        except GeometryTooLarge as error:  # the page keeps the static views and shows this reason
            skip_note_path(out_dir, item.position).write_text(str(error))
        found.add(sample.sample_id)
    absent = sorted(set(missing) - found)
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise ValueError(f"review queue samples not found in tables {[str(t) for t in sample_tables]}: {shown}")
    return paths


def skip_note_path(out_dir: Path, position: int) -> Path:
    """Why an item has no 3-D geometry (too large for the page), for the web app to say."""
    return Path(out_dir) / f"{position}.geometry.skipped.txt"


def _geometry_done(out_dir: Path, position: int) -> bool:
    return geometry_path(out_dir, position).is_file() or skip_note_path(out_dir, position).is_file()


def _find_samples(tables: Sequence[Path], wanted: set[str]) -> Iterator[Sample]:
    """Rows of `tables` whose sample_id is in `wanted`, each yielded once; stops reading when all are found."""
    from tasks.store.read import open_table  # pyarrow import only when there is something to draw

    left = set(wanted)
    for table in tables if left else ():
        for row in open_table(table, Sample).iter_rows():
            if row.sample_id in left:
                left.discard(row.sample_id)
                yield row
                if not left:
                    return


def _render_item(item: QueueItem, sample: Sample, hand_faces: np.ndarray, path: Path) -> None:
    """Write one picture atomically: a crash mid-write must not leave a half PNG that a re-run would keep."""
    from ops.render import render_pair  # matplotlib costs ~1 s to import; the web app never needs it

    if sample.object_vertices is None or sample.object_faces is None:
        raise ValueError(f"sample {sample.sample_id} carries no object mesh (object_vertices/object_faces); "
                         f"cannot draw review item {item.position} of cycle {item.cycle}")
    if sample.hand_verts is None:
        raise ValueError(f"sample {sample.sample_id} has no hand_verts; cannot draw review item {item.position} "
                         f"of cycle {item.cycle}")
    # The title names the item, not the predicted class: the page shows that next to the buttons.
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")  # .png: matplotlib picks the format by suffix
    render_pair(temporary, sample.object_vertices, sample.object_faces, sample.hand_verts,
                hand_faces_for(sample.hand_faces, hand_faces),
                object_vertex_labels=sample.object_vertex_labels,
                title=f"#{item.position}  {sample.dataset}  {sample.object_category}")
    os.replace(temporary, path)
