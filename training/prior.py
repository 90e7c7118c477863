"""The correlation dictionary: how strongly each attribute relates to each facial region, from language.

D (40×R) is the cosine similarity of the text embeddings of attribute phrases and region phrases, centred
per region (a generic region such as "the face" is similar to every attribute; centring removes that),
then turned into a distribution over regions with a softmax at temperature ``tau``. The language
attention of the model is P = D·S, with S the regions' spatial maps (lsa_edge.regions).

Computed once at training time and stored in the checkpoint with the phrases and the encoder that made
it; the runtime and the ONNX graph never need the text encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from lsa_edge._checks import check_number
from lsa_edge.attributes import ATTRIBUTES
from lsa_edge.errors import ConfigError
from lsa_edge.regions import region_names, region_phrases

# How each attribute is described. Several templates per phrase are averaged (see TEMPLATES).
ATTRIBUTE_PHRASES: dict[str, str] = {
    "5_o_Clock_Shadow": "a five o'clock shadow of stubble",
    "Arched_Eyebrows": "arched eyebrows",
    "Attractive": "an attractive appearance",
    "Bags_Under_Eyes": "bags under the eyes",
    "Bald": "a bald head",
    "Bangs": "bangs of hair over the forehead",
    "Big_Lips": "big lips",
    "Big_Nose": "a big nose",
    "Black_Hair": "black hair",
    "Blond_Hair": "blond hair",
    "Blurry": "a blurry, out of focus picture",
    "Brown_Hair": "brown hair",
    "Bushy_Eyebrows": "bushy eyebrows",
    "Chubby": "chubby round cheeks",
    "Double_Chin": "a double chin",
    "Eyeglasses": "eyeglasses",
    "Goatee": "a goatee beard",
    "Gray_Hair": "gray hair",
    "Heavy_Makeup": "heavy makeup",
    "High_Cheekbones": "high cheekbones",
    "Male": "a man",
    "Mouth_Slightly_Open": "a slightly open mouth",
    "Mustache": "a mustache",
    "Narrow_Eyes": "narrow eyes",
    "No_Beard": "no beard",
    "Oval_Face": "an oval face",
    "Pale_Skin": "pale skin",
    "Pointy_Nose": "a pointy nose",
    "Receding_Hairline": "a receding hairline",
    "Rosy_Cheeks": "rosy cheeks",
    "Sideburns": "sideburns",
    "Smiling": "a smile",
    "Straight_Hair": "straight hair",
    "Wavy_Hair": "wavy hair",
    "Wearing_Earrings": "earrings",
    "Wearing_Hat": "a hat",
    "Wearing_Lipstick": "lipstick",
    "Wearing_Necklace": "a necklace",
    "Wearing_Necktie": "a necktie",
    "Young": "a young person",
}

ATTRIBUTE_TEMPLATES: tuple[str, ...] = ("{}", "a photo of a person with {}.", "a close-up face showing {}.")
REGION_TEMPLATES: tuple[str, ...] = ("{}", "a close-up photo of {}.", "{} of a person.")

Normalization = Literal["none", "center", "zscore"]
PriorSource = Literal["text", "shuffled", "random"]


@dataclass
class CorrelationDictionary:
    """The attributes × regions prior and everything needed to reproduce it."""

    attributes: tuple[str, ...]
    regions: tuple[str, ...]
    similarity: np.ndarray  # 40×R raw cosine similarity
    dictionary: np.ndarray  # 40×R, rows sum to 1
    attribute_embeddings: np.ndarray  # 40×E, unit rows: the attribute queries' initialisation
    region_embeddings: np.ndarray  # R×E
    normalization: str = "center"
    tau: float = 0.05
    source: str = "text"
    encoder: dict[str, Any] = field(default_factory=dict)
    attribute_prompts: dict[str, list[str]] = field(default_factory=dict)
    region_prompts: dict[str, list[str]] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("similarity", "dictionary", "attribute_embeddings", "region_embeddings"):
            d[k] = np.asarray(d[k], dtype=np.float32).tolist()
        return d

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> CorrelationDictionary:
        d = dict(d)
        for k in ("similarity", "dictionary", "attribute_embeddings", "region_embeddings"):
            d[k] = np.asarray(d[k], dtype=np.float32)
        d["attributes"], d["regions"] = tuple(d["attributes"]), tuple(d["regions"])
        return cls(**d)

    def top_regions(self, k: int = 2) -> dict[str, list[str]]:
        order = np.argsort(-self.dictionary, axis=1)[:, :k]
        return {a: [self.regions[j] for j in row] for a, row in zip(self.attributes, order)}


def normalize_similarity(sim: np.ndarray, normalization: str, tau: float) -> np.ndarray:
    """Raw attribute×region cosine similarities → a distribution over regions per attribute."""
    check_number(tau, "tau", flag="--tau", lo=0, lo_open=True, hint="e.g. 0.05")
    s = np.asarray(sim, dtype=np.float64)
    if normalization == "center":
        s = s - s.mean(axis=0, keepdims=True)
    elif normalization == "zscore":
        centred = s - s.mean(axis=0, keepdims=True)
        # Equalise the spread per region, then return to the centred similarities' overall spread so that one
        # tau suits every normalisation.
        s = centred / (centred.std(axis=0, keepdims=True) + 1e-6) * centred.std()
    elif normalization != "none":
        raise ConfigError(f"unknown normalization {normalization!r}; choose none, center or zscore")
    z = s / tau
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class PhraseEncoder(Protocol):
    """What the dictionary needs of a text encoder: :class:`~lsa_edge.training.text.TextEncoder` is one (its
    optional ``info`` is recorded when present)."""

    def encode_groups(self, groups: Sequence[Sequence[str]]) -> np.ndarray:
        """One unit vector per group of phrasings."""
        ...


def build_dictionary(
    encoder: PhraseEncoder | None = None,
    region_set: str = "fine",
    normalization: Normalization = "center",
    tau: float = 0.05,
    source: PriorSource = "text",
    seed: int = 0,
) -> CorrelationDictionary:
    """Embed the phrases with ``encoder`` (a :class:`~lsa_edge.training.text.TextEncoder`; None = default)
    and build the dictionary.

    source: "text" (the prior), or a control — "shuffled" permutes which attribute gets which row of
    similarities, "random" computes the similarities from random unit vectors. Controls change only the
    prior; the attribute queries still start from the real text embeddings.
    """
    if encoder is None:
        from .text import TextEncoder

        encoder = TextEncoder()
    attr_prompts = {a: [t.format(ATTRIBUTE_PHRASES[a]) for t in ATTRIBUTE_TEMPLATES] for a in ATTRIBUTES}
    reg_prompts = {
        r: [t.format(p) for p in phrases for t in REGION_TEMPLATES]
        for r, phrases in region_phrases(region_set).items()
    }
    regions = region_names(region_set)
    ea = encoder.encode_groups([attr_prompts[a] for a in ATTRIBUTES])
    er = encoder.encode_groups([reg_prompts[r] for r in regions])
    rng = np.random.default_rng(seed)
    sa, sr = ea, er  # the vectors the prior is computed from; the queries always start from the real text
    if source == "random":
        sa = rng.standard_normal(ea.shape).astype(np.float32)
        sr = rng.standard_normal(er.shape).astype(np.float32)
        sa /= np.linalg.norm(sa, axis=1, keepdims=True)
        sr /= np.linalg.norm(sr, axis=1, keepdims=True)
    sim = sa @ sr.T
    if source == "shuffled":
        sim = sim[rng.permutation(len(ATTRIBUTES))]
    elif source not in ("text", "random"):
        raise ConfigError(f"unknown prior source {source!r}; choose text, shuffled or random")
    info = getattr(encoder, "info", None)
    return CorrelationDictionary(
        attributes=ATTRIBUTES,
        regions=regions,
        similarity=sim.astype(np.float32),
        dictionary=normalize_similarity(sim, normalization, tau),
        attribute_embeddings=ea.astype(np.float32),
        region_embeddings=er.astype(np.float32),
        normalization=normalization,
        tau=float(tau),
        source=source,
        encoder=asdict(info) if info is not None else {},
        attribute_prompts=attr_prompts,
        region_prompts=reg_prompts,
    )
