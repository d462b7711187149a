import numpy as np
import pytest
import trimesh
from PIL import Image

from ops.render import render_pair


def test_render_pair_writes_a_two_view_png(tmp_path):
    box = trimesh.creation.box(extents=(0.06, 0.06, 0.1))
    hand = trimesh.creation.icosphere(subdivisions=2, radius=0.03)
    hand.apply_translation([0.06, 0.0, 0.0])
    labels = (box.vertices[:, 2] > 0).astype(np.int8) * 5
    path = render_pair(tmp_path / "pair.png", box.vertices, box.faces, hand.vertices, hand.faces,
                       object_vertex_labels=labels, title="box + sphere", size_px=200)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (200, 400, 3)
    # Both panels show something other than the white background, and the hand colour appears.
    for panel in (image[:, :200], image[:, 200:]):
        assert (panel.reshape(-1, 3) < 250).any(axis=1).mean() > 0.02
    assert np.abs(image.reshape(-1, 3).astype(int) - [232, 183, 150]).sum(axis=1).min() < 90


def test_render_pair_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="object_vertices"):
        render_pair(tmp_path / "x.png", np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="together"):
        render_pair(tmp_path / "x.png", np.eye(3), np.array([[0, 1, 2]]), hand_verts=np.eye(3))
