"""OBJ text: writing a mesh as OBJ lines and parsing them back, with an optional per-vertex part label as a
5th token on `v` lines (the AffordPose convention). Errors name the file, the field and the line."""

from __future__ import annotations

import numpy as np

from tasks.ingest.common import IngestError


# -- OBJ text ------------------------------------------------------------------------------------------------
def format_obj(vertices: np.ndarray, faces: np.ndarray | None, vertex_labels: np.ndarray | None = None) -> str:
    """OBJ text: `v x y z [label]` lines (label: integer 5th token) then 1-based `f a b c` lines.
    vertices: (V, 3); faces: (F, 3) 0-based or None; vertex_labels: (V,) int or None."""
    vertices = np.asarray(vertices, np.float64)
    if vertex_labels is None:
        lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in vertices]
    else:
        labels = np.asarray(vertex_labels).astype(np.int64)
        lines = [f"v {x:.9g} {y:.9g} {z:.9g} {k}" for (x, y, z), k in zip(vertices, labels, strict=True)]
    if faces is not None:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(faces, np.int64)]
    return "\n".join(lines) + "\n"


def parse_obj(text: str, where: str, require_faces: bool = True, field: str = "mesh"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Parse OBJ text into vertices (V, 3) float64, faces (F, 3) int64 (polygons fan-triangulated) and
    labels (V,) int8 from an optional integer 5th token on `v` lines (all `v` lines or none carry one).
    Raises IngestError naming `where` (the file), `field` and the line number."""
    vertices: list[tuple[float, float, float]] = []
    labels: list[int] = []
    faces: list[tuple[int, int, int]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens or tokens[0] not in ("v", "f"):
            continue  # comments, vt/vn/g/o/s/usemtl lines carry nothing we use
        if tokens[0] == "v":
            _parse_vertex(tokens, number, (where, field), vertices, labels)
        else:
            faces.extend(_parse_face(tokens, number, (where, field), len(vertices)))
    if not vertices or (require_faces and not faces):
        raise IngestError(where, field, f"{field} is empty: {len(vertices)} vertices, {len(faces)} faces")
    label_array = np.asarray(labels, np.int8) if labels else None
    return np.asarray(vertices, np.float64), np.asarray(faces, np.int64).reshape(-1, 3), label_array


def _parse_vertex(tokens: list[str], number: int, at: tuple[str, str], vertices: list, labels: list) -> None:
    # 3 values: x y z; 4: x y z label (AffordPose); 6: x y z r g b (vertex colours, ignored)
    if len(tokens) not in (4, 5, 7):
        raise IngestError(*at, f"line {number}: `v` needs 3 coordinates, then an optional integer label or "
                                 f"an RGB colour, got {len(tokens) - 1} values")
    try:
        xyz = (float(tokens[1]), float(tokens[2]), float(tokens[3]))
    except ValueError:
        raise IngestError(*at, f"line {number}: non-numeric coordinate in {' '.join(tokens)!r}") from None
    if not all(np.isfinite(xyz)):
        raise IngestError(*at, f"line {number}: non-finite coordinate in {' '.join(tokens)!r}")
    if len(tokens) == 5:
        if len(labels) != len(vertices):
            raise IngestError(*at, f"line {number}: labelled vertex after unlabelled ones")
        try:
            labels.append(int(tokens[4]))
        except ValueError:
            raise IngestError(*at, f"line {number}: label {tokens[4]!r} is not an integer") from None
    elif labels:
        raise IngestError(*at, f"line {number}: vertex without a label after labelled ones")
    vertices.append(xyz)


def _parse_face(tokens: list[str], number: int, at: tuple[str, str], num_vertices: int) -> list[tuple[int, int, int]]:
    if len(tokens) < 4:
        raise IngestError(*at, f"line {number}: `f` needs at least 3 vertex indices, got {len(tokens) - 1}")
    try:
        raw = [int(token.split("/")[0]) for token in tokens[1:]]
    except ValueError:
        raise IngestError(*at, f"line {number}: non-integer index in {' '.join(tokens)!r}") from None
    # OBJ indices are 1-based; negative ones count back from the last vertex read so far.
    index = [i - 1 if i > 0 else num_vertices + i for i in raw]
    if any(i < 0 or i >= num_vertices for i in index) or 0 in raw:
        raise IngestError(*at, f"line {number}: face index out of range 1..{num_vertices} "
                                 f"in {' '.join(tokens)!r}")
    return [(index[0], index[k], index[k + 1]) for k in range(1, len(index) - 1)]

