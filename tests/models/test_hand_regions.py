"""The hand's contact regions: fingertip pads around manopth's tip vertices and the palm, on the palmar side."""

import numpy as np
import pytest

from models.hand_regions import TIP_RADIUS, contact_prone, hand_regions
from models.synthetic_hand import build_synthetic_hand
from models.synthetic_hand_spec import TIP_VERTICES


@pytest.fixture(scope="module")
def params():
    return build_synthetic_hand("right")


def test_tips_are_the_vertices_near_each_fingertip(params):
    regions = hand_regions(params.v_template, params.weights)
    for tip in TIP_VERTICES.values():
        near = np.flatnonzero(np.linalg.norm(params.v_template - params.v_template[tip], axis=1) < TIP_RADIUS)
        assert tip in near and set(near) <= set(regions["tips"])  # every pad vertex is in `tips`
    assert set(regions["index_tip"]) <= set(regions["tips"])


def test_contact_prone_is_the_pads_and_the_palm(params):
    regions = hand_regions(params.v_template, params.weights)
    prone = contact_prone(params.v_template, params.weights)
    assert np.array_equal(prone, np.unique(np.concatenate([regions["tips"], regions["palm"]])))
    assert 40 < len(prone) < 400  # a part of the hand, not all of it
    # the palm's vertices sit on its palmar (+y) side
    assert params.v_template[regions["palm"], 1].mean() > params.v_template[:, 1].mean()


def test_bad_shapes_are_refused_by_name(params):
    with pytest.raises(ValueError, match="v_template"):
        hand_regions(params.v_template[:100], params.weights)


def test_layer_ids_count_among_the_strided_vertices_and_are_kept(params):
    from models.hand_regions import layer_contact_prone
    from models.mano import ManoLayer

    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    prone = contact_prone(params.v_template, params.weights)
    assert np.array_equal(layer_contact_prone(layer).numpy(), prone)
    strided = layer_contact_prone(layer, 4).numpy()
    assert np.array_equal(strided * 4, prone[prone % 4 == 0])  # id i is vertex 4 i
    assert layer_contact_prone(layer, 4) is layer_contact_prone(layer, 4)  # computed once per layer and stride
    with pytest.raises(ValueError, match="stride"):
        layer_contact_prone(layer, 0)
