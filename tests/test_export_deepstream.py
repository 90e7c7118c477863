"""`lsa-edge export deepstream`: the nvinfer SGIE config (precision, normalisation with its stated error) and
samples/deepstream_parser.py against stand-ins of pyds's metadata (no DeepStream needed)."""

from __future__ import annotations

import configparser
import ctypes
import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("onnx")
from _export_packages import package

from lsa_edge.card import Preprocessing
from lsa_edge.cli import main
from lsa_edge.engines.deepstream import DeepStreamOptions, normalisation, write_deepstream
from lsa_edge.errors import ConfigError

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _props(folder):
    cp = configparser.ConfigParser()
    cp.read(folder / "config_infer_secondary_lsa.txt")
    return dict(cp["property"])


@pytest.mark.parametrize("precision,mode", [("fp32", "0"), ("fp16", "2"), ("int8", "1")])
def test_config_per_precision(tmp_path, precision, mode):
    out = tmp_path / "ds"
    write_deepstream(
        package(tmp_path, precision), out, DeepStreamOptions(operate_on_gie_id=3, gie_unique_id=4)
    )
    p = _props(out)
    assert p["network-mode"] == mode and p["process-mode"] == "2" and p["network-type"] == "100"
    assert p["output-tensor-meta"] == "1" and p["infer-dims"] == "3;160;144" and p["batch-size"] == "16"
    assert (p["operate-on-gie-id"], p["gie-unique-id"], p["operate-on-class-ids"]) == ("3", "4", "0")
    assert p["model-color-format"] == "0" and (out / p["onnx-file"]).is_file() and p["model-engine-file"]
    # no engine in these packages: the name under which nvinfer saves the one it builds (onnx name included)
    assert p["model-engine-file"] == f"{p['onnx-file']}_b16_gpu0_{precision}.engine"
    assert float(p["net-scale-factor"]) == pytest.approx(1 / (255 * (0.229 + 0.224 + 0.225) / 3))
    assert [float(v) for v in p["offsets"].split(";")] == pytest.approx([123.675, 116.28, 103.53])
    if precision == "int8":
        assert (out / p["int8-calib-file"]).read_text().startswith("TRT-")
    else:
        assert "int8-calib-file" not in p
    assert "without landmark alignment" in (out / "README.md").read_text()
    assert json.loads((out / "lsa_attributes.json").read_text())["gie_unique_id"] == 4


def test_normalisation_error_is_the_largest_over_pixels_and_channels():
    pre = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.2, 0.25, 0.3))
    n = normalisation(pre)
    worst = 0.0
    for x in range(256):
        for c in range(3):
            exact = (x / 255 - pre.mean[c]) / pre.std[c]
            nv = n.net_scale_factor * (x - n.offsets[c])
            worst = max(worst, abs(exact - nv))
    assert n.max_error == pytest.approx(worst) and n.worst_channel == 0
    assert normalisation(Preprocessing(std=(0.25, 0.25, 0.25))).max_error == pytest.approx(0.0, abs=1e-12)


def test_cli_says_the_error_and_refuses_bad_ids(tmp_path, capsys):
    assert main(["export", "deepstream", "--out", str(tmp_path / "ds"), str(package(tmp_path))]) == 0
    assert "largest error 0.0299" in capsys.readouterr().out
    assert "largest error 0.0299" in (tmp_path / "ds" / "config_infer_secondary_lsa.txt").read_text()
    with pytest.raises(ConfigError, match="its own id"):
        DeepStreamOptions(operate_on_gie_id=2, gie_unique_id=2)


# --------------------------------------------------------------------------- the parser, with stand-ins
def _load_parser(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyds", None)  # importing the parser must not need pyds
    spec = importlib.util.spec_from_file_location("deepstream_parser", SAMPLES / "deepstream_parser.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "deepstream_parser", module)
    spec.loader.exec_module(module)
    return module


class _Pyds(SimpleNamespace):
    """pyds's few calls the parser makes, over plain objects and a ctypes float buffer."""

    NVDSINFER_TENSOR_OUTPUT_META = 12

    def __init__(self):
        super().__init__(
            NvDsMetaType=SimpleNamespace(NVDSINFER_TENSOR_OUTPUT_META=self.NVDSINFER_TENSOR_OUTPUT_META),
            NvDsUserMeta=SimpleNamespace(cast=lambda x: x),
            NvDsInferTensorMeta=SimpleNamespace(cast=lambda x: x),
        )

    @staticmethod
    def get_nvds_LayerInfo(meta, i):
        return meta.layers[i]

    @staticmethod
    def get_ptr(buffer):
        return ctypes.addressof(buffer)


def _object(probs, unique_id=2, layer="probs"):
    buf = (ctypes.c_float * len(probs))(*probs)
    tensor = SimpleNamespace(
        unique_id=unique_id,
        num_output_layers=2,
        layers=[
            SimpleNamespace(layerName="other", buffer=None),
            SimpleNamespace(layerName=layer, buffer=buf),
        ],
        keep=buf,
    )
    other = SimpleNamespace(base_meta=SimpleNamespace(meta_type=3), user_meta_data=None)
    ours = SimpleNamespace(
        base_meta=SimpleNamespace(meta_type=_Pyds.NVDSINFER_TENSOR_OUTPUT_META), user_meta_data=tensor
    )
    second = SimpleNamespace(data=ours, next=None)
    return SimpleNamespace(obj_user_meta_list=SimpleNamespace(data=other, next=second))


def test_parser_labels_an_object_with_the_cards_thresholds(tmp_path, monkeypatch):
    parser_mod = _load_parser(monkeypatch)
    write_deepstream(package(tmp_path), tmp_path / "ds", DeepStreamOptions())
    parser = parser_mod.AttributeParser.load(tmp_path / "ds" / "lsa_attributes.json")
    assert len(parser.names) == 40 and parser.output_layer == "probs"
    probs = [t + 0.01 if i in (15, 31) else t - 0.01 for i, t in enumerate(parser.thresholds)]
    labels = parser.labels_of_object(_object(probs), _Pyds())
    assert [n for n, _ in labels] == ["Eyeglasses", "Smiling"]
    assert labels[1][1] == pytest.approx(probs[31], abs=1e-6)
    assert parser.labels_of_object(_object(probs, unique_id=7), _Pyds()) is None  # another GIE's tensors
    assert parser.labels_of_object(_object(probs, layer="x"), _Pyds()) is None
    assert parser.labels_of_object(SimpleNamespace(obj_user_meta_list=None), _Pyds()) is None
    with pytest.raises(ValueError, match="39 probabilities"):
        parser_mod.attributes_from_probs(probs[:39], parser.names, parser.thresholds)
