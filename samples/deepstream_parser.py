"""DeepStream: turn the lsa-edge SGIE's tensor output into face attribute labels (pyds-style probe code).

``lsa-edge export deepstream --out DIR MODEL`` writes the nvinfer config (``output-tensor-meta=1``) and
``DIR/lsa_attributes.json`` (names, thresholds, output layer, gie-unique-id). In a pad probe after the SGIE:

    import pyds
    from deepstream_parser import AttributeParser

    parser = AttributeParser.load("DIR/lsa_attributes.json")
    ...
    for obj_meta in objects_of(frame_meta):            # pyds.NvDsObjectMeta.cast(...)
        labels = parser.labels_of_object(obj_meta, pyds)  # [("Smiling", 0.93), ...]

Importable without pyds (the module that reads the metadata is passed in), so it is tested with stand-ins.
Needs only the standard library.
"""

from __future__ import annotations

import ctypes
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

Labels = List[Tuple[str, float]]
log = logging.getLogger(__name__)


def attributes_from_probs(
    probs: Sequence[float], names: Sequence[str], thresholds: Sequence[float]
) -> Labels:
    """(name, probability) of every attribute whose probability reaches its threshold, in model order."""
    if not (len(probs) == len(names) == len(thresholds)):
        raise ValueError(f"{len(probs)} probabilities, {len(names)} names, {len(thresholds)} thresholds")
    return [(n, float(p)) for n, p, t in zip(names, probs, thresholds) if p >= t]


@dataclass(frozen=True)
class AttributeParser:
    """The SGIE's output layer, read from NvDsInferTensorMeta and thresholded with the card's thresholds."""

    names: tuple[str, ...]
    thresholds: tuple[float, ...]
    output_layer: str = "probs"
    gie_unique_id: int = 2

    @classmethod
    def load(cls, path: str | Path) -> AttributeParser:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            names=tuple(doc["attributes"]),
            thresholds=tuple(float(t) for t in doc["thresholds"]),
            output_layer=doc.get("output_layer", "probs"),
            gie_unique_id=int(doc.get("gie_unique_id", 2)),
        )

    def probs_from_tensor_meta(self, tensor_meta: Any, pyds: Any) -> Optional[list[float]]:
        """The probabilities of one NvDsInferTensorMeta (None when it is another GIE's or lacks the layer)."""
        if getattr(tensor_meta, "unique_id", self.gie_unique_id) != self.gie_unique_id:
            return None
        for i in range(tensor_meta.num_output_layers):
            layer = pyds.get_nvds_LayerInfo(tensor_meta, i)
            if layer.layerName != self.output_layer:
                continue
            n = getattr(getattr(layer, "inferDims", None), "numElements", len(self.names))
            if n != len(self.names):  # another model's layer: reading len(names) floats would be garbage
                log.warning(
                    "%s has %d values, not the %d attributes: skipped", self.output_layer, n, len(self.names)
                )
                return None
            ptr = ctypes.cast(pyds.get_ptr(layer.buffer), ctypes.POINTER(ctypes.c_float))
            return [float(ptr[k]) for k in range(len(self.names))]
        return None

    def labels_of_object(self, obj_meta: Any, pyds: Any) -> Optional[Labels]:
        """The attribute labels the SGIE attached to one NvDsObjectMeta (None: this face was not inferred)."""
        item = obj_meta.obj_user_meta_list
        while item is not None:
            user_meta = pyds.NvDsUserMeta.cast(item.data)
            if user_meta.base_meta.meta_type == pyds.NvDsMetaType.NVDSINFER_TENSOR_OUTPUT_META:
                probs = self.probs_from_tensor_meta(
                    pyds.NvDsInferTensorMeta.cast(user_meta.user_meta_data), pyds
                )
                if probs is not None:
                    return attributes_from_probs(probs, self.names, self.thresholds)
            item = item.next
        return None
