import numpy as np
import pytest

from lsa_edge import ConfigError
from lsa_edge.card import celeba_preprocessing
from lsa_edge.regions import COARSE_GROUPS, region_maps, region_names


def _centroid(m):
    ys, xs = np.mgrid[0 : m.shape[0], 0 : m.shape[1]]
    return float((m * ys).sum()), float((m * xs).sum())


def test_maps_are_distributions_on_the_token_grid():
    t = celeba_preprocessing((128, 112)).template
    s = region_maps(t, (8, 7))
    assert s.shape == (len(region_names()), 8, 7)
    assert np.allclose(s.sum(axis=(1, 2)), 1, atol=1e-5) and (s >= 0).all()
    c = region_maps(t, (8, 7), "coarse")
    assert c.shape == (len(COARSE_GROUPS), 8, 7)


def test_regions_are_where_the_face_has_them():
    t = celeba_preprocessing((128, 112)).template
    s = dict(zip(region_names(), region_maps(t, (32, 28))))
    y = {k: _centroid(v)[0] for k, v in s.items()}
    assert (
        y["head_top"]
        < y["forehead"]
        < y["eyebrows"]
        < y["eyes"]
        < y["nose"]
        < y["mouth"]
        < y["chin"]
        < y["neck"]
    )
    # symmetric regions are centred horizontally
    for name in ("eyes", "ears", "cheeks", "mouth"):
        assert _centroid(s[name])[1] == pytest.approx(13.5, abs=0.6)


def test_unknown_region_set():
    with pytest.raises(ConfigError, match="fine, coarse"):
        region_names("medium")
