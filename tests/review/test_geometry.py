"""Per-item 3-D geometry: contact vertices within 5 mm, the predicted class's part, the size limit, and the
endpoint that serves it by (cycle, position) only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

import review.geometry as geometry
from review.app import create_app
from review.geometry import GeometryTooLarge, geometry_body, write_body
from review.images import cycle_images_dir, skip_note_path
from review.store import ReviewStore
from schemas.review import QueueItem


def _box():
    """A unit-ish box object (8 vertices, 12 faces) whose +x face (vertices 1, 2, 5, 6) is label 1, handle-grasp."""
    vertices = np.array([[x, y, z] for z in (0, 0.05) for y in (0, 0.05) for x in (0, 0.05)], float)
    vertices = vertices[[0, 1, 3, 2, 4, 5, 7, 6]]
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
                      [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
    labels = np.zeros(8, int)
    labels[[1, 2, 5, 6]] = 1
    return vertices, faces, labels


def test_contact_part_and_touch_point():
    vertices, faces, labels = _box()
    # A "hand" of three vertices 3 mm outside vertices 1 and 2 (+x side), and one far away.
    hand = np.array([[0.053, 0.0, 0.0], [0.053, 0.05, 0.0], [0.3, 0.3, 0.3]])
    body = geometry_body("handle-grasp", hand, [[0, 1, 2]], vertices, faces, labels)
    assert body["contact"] == [1, 2]  # within 5 mm: vertices 1 and 2 only
    assert body["predicted_part"] == [1] and body["parts"]["1"] == "handle-grasp"
    assert body["touch"] == pytest.approx([0.05, 0.025, 0.0])
    assert len(body["object"]["vertices"]) == 24 and len(body["object"]["faces"]) == 36
    assert body["object"]["labels"] == labels.tolist()


def test_too_large_geometry_is_refused_by_name(tmp_path, monkeypatch):
    vertices, faces, labels = _box()
    body = geometry_body("lift", vertices, faces, vertices, faces, labels)
    monkeypatch.setattr(geometry, "MAX_GEOMETRY_BYTES", 100)
    with pytest.raises(GeometryTooLarge, match=r"sample s1: 3-D geometry of .* MiB is over"):
        write_body(body, tmp_path, 0, "sample s1")
    assert not list(tmp_path.iterdir())


def test_the_endpoint_serves_by_position_and_says_why_when_there_is_none(tmp_path):
    store_path, images = tmp_path / "review.sqlite", tmp_path / "images"
    items = [QueueItem(cycle=0, position=i, sample_id=f"toy-{i:016x}", dataset="toy", object_category="mug",
                       predicted="wrap-grasp", confidence=0.9) for i in range(3)]
    ReviewStore(store_path).create_queue(0, items)
    folder = cycle_images_dir(images, 0)
    folder.mkdir(parents=True)
    vertices, faces, labels = _box()
    write_body(geometry_body("wrap-grasp", vertices, faces, vertices, faces, labels), folder, 0, "item 0")
    skip_note_path(folder, 1).write_text("sample toy-1: 3-D geometry of 9.0 MiB is over the page's 4 MiB limit")
    client = TestClient(create_app(store_path, images), base_url="http://127.0.0.1")
    served = client.get("/api/cycles/0/items/0/geometry")
    assert served.status_code == 200 and json.loads(served.content)["predicted"] == "wrap-grasp"
    too_large = client.get("/api/cycles/0/items/1/geometry")
    assert too_large.status_code == 404 and "over the page's 4 MiB limit" in too_large.json()["detail"]
    assert "no 3-D geometry was written" in client.get("/api/cycles/0/items/2/geometry").json()["detail"]
    past = client.get("/api/cycles/0/items/3/geometry")  # past the queue
    assert past.status_code == 422 and "positions 0..2" in past.text and "position" in past.text
    assert client.get("/api/cycles/5/items/0/geometry").status_code == 404  # no such cycle
    assert client.get("/api/cycles/0/items/-1/geometry").status_code == 422
    assert client.get("/api/cycles/0/items/..%2F..%2Freview.sqlite/geometry").status_code in (404, 422)
