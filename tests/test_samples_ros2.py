"""The ROS 2 sample without ROS: message conversion against stand-ins of vision_msgs 2, 3 and 4, the numpy
image conversion, and the node's wiring with stand-in rclpy modules and a stand-in Pipeline."""

from __future__ import annotations

import array
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import ClassVar

import numpy as np
import pytest

import lsa_edge
from lsa_edge.errors import ConfigError
from lsa_edge.results import Face, FrameResult

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(SAMPLES))  # as when the sample runs as a script
    monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location(name, SAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def convert(monkeypatch):
    # importing the conversion must not touch ROS: make any such import fail loudly
    for name in ("rclpy", "vision_msgs", "cv_bridge", "sensor_msgs", "std_msgs"):
        monkeypatch.setitem(sys.modules, name, None)
    return _load("ros2_convert", monkeypatch)


# --------------------------------------------------------------------------- stand-in messages


class Msg(SimpleNamespace):
    """A message stand-in as strict as rosidl's: no new fields, float fields take floats, str fields str."""

    def __setattr__(self, name, value):
        if name not in self.__dict__:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        old = self.__dict__[name]
        for kind in (bool, float, str):
            if isinstance(old, kind) and type(value) is not kind:
                raise TypeError(f"field {name!r} takes {kind.__name__}, got {type(value).__name__}")
        super().__setattr__(name, value)


def _header() -> Msg:
    return Msg(stamp=Msg(sec=0, nanosec=0), frame_id="")


def vision_msgs_v2() -> SimpleNamespace:  # Foxy
    return SimpleNamespace(
        Detection2DArray=lambda: Msg(header=_header(), detections=[]),
        Detection2D=lambda: Msg(
            header=_header(),
            results=[],
            bbox=Msg(center=Msg(x=0.0, y=0.0, theta=0.0), size_x=0.0, size_y=0.0),
            source_img=None,
            is_tracking=False,
            tracking_id="",
        ),
        ObjectHypothesisWithPose=lambda: Msg(id="", score=0.0, pose=Msg()),
    )


def vision_msgs_v3() -> SimpleNamespace:  # Galactic
    ns = vision_msgs_v2()
    ns.Detection2D = lambda: Msg(
        header=_header(),
        results=[],
        bbox=Msg(center=Msg(x=0.0, y=0.0, theta=0.0), size_x=0.0, size_y=0.0),
        id="",
    )
    ns.ObjectHypothesisWithPose = lambda: Msg(hypothesis=Msg(class_id="", score=0.0), pose=Msg())
    return ns


def vision_msgs_v4() -> SimpleNamespace:  # Humble, Iron, Jazzy, Rolling
    ns = vision_msgs_v3()
    ns.Detection2D = lambda: Msg(
        header=_header(),
        results=[],
        bbox=Msg(center=Msg(position=Msg(x=0.0, y=0.0), theta=0.0), size_x=0.0, size_y=0.0),
        id="",
    )
    return ns


def _result() -> FrameResult:
    smiling = Face(
        box=(100.0, 50.0, 180.0, 150.0),
        score=0.93,
        keypoints=((120.0, 90.0),) * 6,
        track_id=7,
        attributes={"Smiling": 0.91, "Eyeglasses": 0.12, "Male": 0.64},
        labels=("Smiling", "Male"),
    )
    untracked = Face(box=(300, 200, 340, 250), score=0.4, keypoints=((310.0, 220.0),) * 6)
    return FrameResult(
        index=4, timestamp=0.133, size=(480, 640), faces=(smiling, untracked), timings_ms={"total": 9.5}
    )


def _center(det) -> tuple[float, float]:
    c = det.bbox.center
    return (c.position.x, c.position.y) if hasattr(c, "position") else (c.x, c.y)


def _hypotheses(det) -> list[tuple[str, float]]:
    return [
        (h.hypothesis.class_id, h.hypothesis.score) if hasattr(h, "hypothesis") else (h.id, h.score)
        for h in det.results
    ]


@pytest.mark.parametrize("factory", [vision_msgs_v2, vision_msgs_v3, vision_msgs_v4])
def test_detection2d_array_for_each_vision_msgs_version(convert, factory):
    msgs = factory()
    header = _header()
    header.frame_id = "camera_optical"
    out = convert.faces_to_detection2d_array(_result(), header, msgs)
    assert out.header is header
    a, b = out.detections
    assert a.header is header
    assert _center(a) == (140.0, 100.0) and (a.bbox.size_x, a.bbox.size_y) == (80.0, 100.0)
    assert _center(b) == (320.0, 225.0) and (b.bbox.size_x, b.bbox.size_y) == (40.0, 50.0)
    assert _hypotheses(a) == [("Smiling", 0.91), ("Male", 0.64)]  # the labels that are on
    assert _hypotheses(b) == []
    if hasattr(a, "id"):
        assert (a.id, b.id) == ("7", "")
    else:
        assert (a.tracking_id, a.is_tracking, b.tracking_id, b.is_tracking) == ("7", True, "", False)


def test_all_attributes_and_no_header(convert):
    out = convert.faces_to_detection2d_array(_result(), None, vision_msgs_v4(), all_attributes=True)
    assert out.header.frame_id == ""  # the default header is kept
    assert _hypotheses(out.detections[0]) == [("Smiling", 0.91), ("Eyeglasses", 0.12), ("Male", 0.64)]


def test_nan_probability_becomes_zero_score(convert):
    face = Face(box=(0, 0, 10, 10), score=0.9, keypoints=(), track_id=1, attributes={"Smiling": float("nan")})
    result = FrameResult(index=0, timestamp=0.0, size=(10, 10), faces=(face,), timings_ms={})
    det = convert.face_to_detection2d(face, None, vision_msgs_v3(), all_attributes=True)
    assert _hypotheses(det) == [("Smiling", 0.0)]
    assert json.loads(convert.attributes_json(result))["faces"][0]["attributes"] == {"Smiling": None}


def test_attributes_json_is_the_full_result(convert):
    result = _result()
    text = convert.attributes_json(result)
    assert "\n" not in text
    assert json.loads(text) == result.to_dict()


# --------------------------------------------------------------------------- images


def _image(pixels: np.ndarray, encoding: str, pad: int = 0, data_kind: str = "bytes") -> SimpleNamespace:
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 255, np.uint8)], axis=1)
    raw = padded.tobytes()
    data = {"bytes": raw, "array": array.array("B", raw), "list": list(raw)}[data_kind]
    return SimpleNamespace(height=h, width=w, step=padded.shape[1], encoding=encoding, data=data)


@pytest.mark.parametrize("data_kind", ["bytes", "array", "list"])
def test_image_encodings(convert, data_kind):
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    alpha = np.full((5, 7, 1), 9, np.uint8)
    cases = {
        "bgr8": bgr,
        "rgb8": bgr[:, :, ::-1],
        "bgra8": np.concatenate([bgr, alpha], axis=2),
        "rgba8": np.concatenate([bgr[:, :, ::-1], alpha], axis=2),
    }
    for encoding, pixels in cases.items():
        out = convert.image_to_bgr(_image(pixels, encoding, pad=3, data_kind=data_kind))
        assert out.dtype == np.uint8 and out.shape == (5, 7, 3), encoding
        np.testing.assert_array_equal(out, bgr, err_msg=encoding)
    gray = bgr[:, :, 0].copy()
    out = convert.image_to_bgr(_image(gray, "mono8", pad=1, data_kind=data_kind))
    np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))


def test_image_is_a_writable_copy(convert):
    bgr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = _image(bgr, "bgr8")
    out = convert.image_to_bgr(msg)
    assert out.flags.writeable and out.flags.c_contiguous
    out[:] = 0
    assert convert.image_to_bgr(msg).sum() == bgr.sum()


def test_image_errors(convert):
    bgr = np.zeros((2, 3, 3), np.uint8)
    with pytest.raises(ConfigError, match=r"'yuv422'.*bgr8, rgb8.*cv_bridge"):
        convert.image_to_bgr(_image(bgr, "yuv422"))
    bad = _image(bgr, "bgr8")
    bad.step = 4
    with pytest.raises(ConfigError, match="step=4"):
        convert.image_to_bgr(bad)
    short = _image(bgr, "bgr8")
    short.data = short.data[:-1]
    with pytest.raises(ConfigError, match="17 bytes"):
        convert.image_to_bgr(short)


def test_to_bgr_prefers_cv_bridge(convert):
    calls = []

    class Bridge:
        def imgmsg_to_cv2(self, msg, desired_encoding):
            calls.append(desired_encoding)
            return "from bridge"

    msg = _image(np.zeros((1, 1, 3), np.uint8), "bgr8")
    assert convert.to_bgr(msg, Bridge()) == "from bridge" and calls == ["bgr8"]
    assert convert.to_bgr(msg).shape == (1, 1, 3)


# --------------------------------------------------------------------------- the node, with stand-in ROS


class FakePipeline:
    instances: ClassVar[list[FakePipeline]] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.frames: list[np.ndarray] = []
        self.closed = False
        FakePipeline.instances.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def predict(self, frame, timestamp=None):
        self.frames.append((frame, timestamp))
        return _result()


def _fake_ros(monkeypatch, params: dict) -> SimpleNamespace:
    ros = SimpleNamespace(published={}, subscriptions=[], logs=[], spin=None)

    class Publisher:
        def __init__(self, topic):
            self.topic_name = f"/lsa_edge_attributes/{topic[2:]}" if topic.startswith("~/") else topic
            ros.published[self.topic_name] = []

        def publish(self, msg):
            ros.published[self.topic_name].append(msg)

    class Logger:
        def info(self, text, **_):
            ros.logs.append(("info", text))

        def error(self, text, **_):
            ros.logs.append(("error", text))

    class Node:
        def __init__(self, name):
            self.name, self.params, self.destroyed = name, {}, False

        def declare_parameter(self, name, default):
            self.params[name] = params.get(name, default)

        def get_parameter(self, name):
            return SimpleNamespace(value=self.params[name])

        def create_subscription(self, kind, topic, callback, qos):
            ros.subscriptions.append((kind, topic, callback, qos))

        def create_publisher(self, kind, topic, depth):
            return Publisher(topic)

        def get_logger(self):
            return Logger()

        def destroy_node(self):
            self.destroyed = True

    def spin(node):
        ros.node = node
        if ros.spin:
            ros.spin(node)
        raise KeyboardInterrupt  # Ctrl-C

    state = {"ok": True}
    rclpy = ModuleType("rclpy")
    rclpy.init = lambda args=None: None
    rclpy.spin = spin
    rclpy.ok = lambda: state["ok"]
    rclpy.shutdown = lambda: state.update(ok=False)
    ros.state = state
    modules = {
        "rclpy": rclpy,
        "rclpy.node": SimpleNamespace(Node=Node),
        "rclpy.qos": SimpleNamespace(
            qos_profile_sensor_data=SimpleNamespace(depth=5, reliability="best_effort")
        ),
        "rclpy.executors": SimpleNamespace(ExternalShutdownException=RuntimeError),
        "sensor_msgs": ModuleType("sensor_msgs"),
        "sensor_msgs.msg": SimpleNamespace(Image=object),
        "std_msgs": ModuleType("std_msgs"),
        "std_msgs.msg": SimpleNamespace(String=lambda: Msg(data="")),
        "vision_msgs": SimpleNamespace(msg=vision_msgs_v4()),
        "cv_bridge": None,  # not installed: the numpy conversion is used
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    FakePipeline.instances = []
    monkeypatch.setattr(lsa_edge, "Pipeline", FakePipeline, raising=False)
    return ros


def test_ros2_node_end_to_end_with_stand_ins(monkeypatch):
    ros = _fake_ros(monkeypatch, {"model": "build/int8", "image_topic": "/cam/image", "min_face_size": 32})
    image = _image(np.full((4, 6, 3), 50, np.uint8), "rgb8")
    image.header = _header()
    image.header.stamp = Msg(sec=12, nanosec=250_000_000)

    def on_spin(node):
        ((_, topic, callback, qos),) = ros.subscriptions
        assert topic == "/cam/image" and qos.depth == 1 and qos.reliability == "best_effort"
        callback(image)
        callback(SimpleNamespace(**{**vars(image), "encoding": "16UC1"}))  # logged, node keeps running

    ros.spin = on_spin
    node_module = _load("ros2_node", monkeypatch)
    node_module.main([])

    (pipe,) = FakePipeline.instances
    assert pipe.kwargs == {
        "model": "build/int8",
        "backend": "auto",
        "min_face_size": 32.0,
        "detector_threshold": None,  # 0: the detector's default
    }
    ((frame, timestamp),) = pipe.frames
    assert frame.shape == (4, 6, 3) and timestamp == pytest.approx(12.25)  # the image's stamp
    (detections,) = ros.published["/lsa_edge_attributes/detections"]
    assert detections.header is image.header and [d.id for d in detections.detections] == ["7", ""]
    (attributes,) = ros.published["/lsa_edge_attributes/attributes"]
    assert json.loads(attributes.data) == _result().to_dict()
    assert any(level == "error" and "16UC1" in text for level, text in ros.logs)
    assert pipe.closed and ros.node.destroyed and not ros.state["ok"]  # clean shutdown on Ctrl-C
