"""Checkpoint → ONNX export: parity with torch on real faces, dynamic batch, the card in metadata_props."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

from lsa_edge.card import ModelCard  # noqa: E402
from lsa_edge.data import load_dataset  # noqa: E402
from lsa_edge.engines.export import INPUT_NAME, OUTPUT_NAME, export_onnx, read_card  # noqa: E402
from lsa_edge.preprocess import normalize  # noqa: E402
from lsa_edge.training import LSAConfig, LSAModel  # noqa: E402
from lsa_edge.training.data import load_crops  # noqa: E402
from lsa_edge.training.model import preprocessing_for  # noqa: E402


@pytest.fixture(scope="module")
def exported(dictionary, celeba_dir, tmp_path_factory):
    torch.manual_seed(0)
    model = LSAModel(
        LSAConfig(backbone="test_tiny", d_model=32, heads=2, ffn=64, input_size=(64, 48)), dictionary
    )
    # Non-trivial BatchNorm statistics, as after training.
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 64, 48))
    model.eval()
    pre = preprocessing_for(model.config)
    card = ModelCard(
        name="lsa-test", preprocessing=pre, regions=dictionary.regions, model=model.config.to_dict()
    )
    faces = load_crops(load_dataset(celeba_dir).split("val").subset(range(40)), pre, progress=False)
    x = normalize(faces.images, pre)
    path = tmp_path_factory.mktemp("onnx") / "lsa.onnx"
    return model, card, x, export_onnx(model, card, path, x)


def test_fp32_parity_on_real_faces(exported):
    _, _, _, res = exported
    assert res.parity_images == 40 and res.simplified
    assert res.parity_max_abs_diff <= 1e-4


def test_dynamic_batch_and_card(exported):
    model, card, x, res = exported
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    assert inp.name == INPUT_NAME and inp.shape[1:] == [3, 64, 48] and not isinstance(inp.shape[0], int)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.from_numpy(x[:5]))).numpy()
    for n in (1, 5):
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x[:n]})[0]
        assert got.shape == (n, 40) and np.abs(got - ref[:n]).max() < 1e-4
    assert read_card(res.path) == card
    ops = {n.op_type for n in onnx.load(str(res.path)).graph.node}
    assert "Sigmoid" in ops and not ops & {"Dropout", "BatchNormalization"}  # folded for inference
