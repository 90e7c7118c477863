"""Checkpoint → ONNX export: parity with torch on real faces, dynamic batch, the card in metadata_props."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxsim")

from lsa_edge.engines.export import INPUT_NAME, OUTPUT_NAME, read_card  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_model, tiny_faces, tiny_onnx):
    model, card = tiny_model
    return model, card, tiny_faces.tensors(card.preprocessing), tiny_onnx


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
    stored = read_card(res.path)
    assert stored.with_updates(build={}) == card
    assert stored.build["export"]["parity_max_abs_diff"] == res.parity_max_abs_diff
    assert stored.build["export"]["opset"] == 17
    ops = {n.op_type for n in onnx.load(str(res.path)).graph.node}
    assert "Sigmoid" in ops and not ops & {"Dropout", "BatchNormalization"}  # folded for inference


def test_opset_outside_the_supported_range_is_a_usage_error(exported, tmp_path):
    from lsa_edge.engines.export import export_onnx
    from lsa_edge.errors import ConfigError

    model, card, x, _ = exported
    with pytest.raises(ConfigError, match="opset 11"):
        export_onnx(model, card, tmp_path / "m.onnx", x, opset=11)
    assert not list(tmp_path.iterdir())
