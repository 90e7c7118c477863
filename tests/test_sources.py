"""Video sources: URI parsing, the CSI pipeline, files, images, iterables, fake live cameras (latest frame,
loss and reconnection), and ``lsa-edge doctor`` on this camera-less, GPU-less machine."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lsa_edge.errors import ConfigError, DataError, MissingDependencyError
from lsa_edge.sources import (
    ReconnectPolicy,
    Source,
    csi_pipeline,
    open_source,
    parse_uri,
    to_bgr_uint8,
)
from lsa_edge.sources.cameras import camera_api

# ------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("uri", "kind", "target"),
    [
        (0, "camera", 0),
        ("0", "camera", 0),
        (" 2 ", "camera", 2),
        (np.int64(1), "camera", 1),
        ("v4l2:///dev/video2", "v4l2", "/dev/video2"),
        ("/dev/video1", "v4l2", "/dev/video1"),
        ("v4l2://3", "v4l2", "/dev/video3"),
        ("csi://0", "csi", 0),
        ("csi://1", "csi", 1),
        ("rtsp://cam.local:554/stream1", "stream", "rtsp://cam.local:554/stream1"),
        ("RTSP://cam.local/s", "stream", "RTSP://cam.local/s"),
        ("rtsps://cam.local/s", "stream", "rtsps://cam.local/s"),
        ("http://10.0.0.2:8080/video.mjpg", "stream", "http://10.0.0.2:8080/video.mjpg"),
        ("https://example.invalid/live.m3u8", "stream", "https://example.invalid/live.m3u8"),
        ("clip.mp4", "video", "clip.mp4"),
        ("clip.MKV", "video", "clip.MKV"),
        ("file:///data/clip.avi", "video", "/data/clip.avi"),
        ("face.JPG", "image", "face.JPG"),
        ("shots/a.png", "image", "shots/a.png"),
        ("frames/*.png", "glob", "frames/*.png"),
        ("frames/**/*.jpg", "glob", "frames/**/*.jpg"),
    ],
)
def test_parse_uri_kinds(uri, kind, target):
    spec = parse_uri(uri)
    assert (spec.kind, spec.target) == (kind, target)
    assert spec.live == (kind in ("camera", "v4l2", "csi", "stream"))


def test_parse_uri_folder_arrays_iterables_and_query_options(tmp_path):
    assert parse_uri(tmp_path).kind == "folder"
    assert parse_uri(str(tmp_path)).target == str(tmp_path)
    one = np.zeros((4, 5, 3), np.uint8)
    spec = parse_uri(one)
    assert spec.kind == "iterable" and len(spec.target) == 1 and spec.target[0] is one
    assert parse_uri(np.zeros((2, 4, 5, 3), np.uint8)).kind == "iterable"
    assert parse_uri([one, one]).kind == "iterable"
    assert parse_uri(x for x in [one]).kind == "iterable"
    spec = parse_uri("csi://1?width=1920&height=1080&flip=rotate-180")
    assert (spec.kind, spec.target) == ("csi", 1)
    assert spec.options == {"width": "1920", "height": "1080", "flip": "rotate-180"}
    spec = parse_uri("v4l2:///dev/video0?fourcc=MJPG&width=1280")
    assert spec.target == "/dev/video0" and spec.options == {"fourcc": "MJPG", "width": "1280"}


def test_stream_names_hide_passwords():
    spec = parse_uri("rtsp://admin:s3cret@10.0.0.2:554/live")
    assert "s3cret" not in spec.name and spec.name == "stream:rtsp://admin:***@10.0.0.2:554/live"
    assert spec.target == "rtsp://admin:s3cret@10.0.0.2:554/live"  # the real URL is still what opens


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (-1, "0 or more"),
        (True, "not a video source"),
        ("", "empty"),
        ("csi://abc", "csi://N"),
        ("v4l2://dev/video0", "three slashes"),
        ("ftp://host/x", "unknown source scheme"),
        ("rtsp://", "no host"),
        (np.zeros(3), "shape"),
        (object(), "not a video source"),
    ],
)
def test_parse_uri_errors_say_what_is_accepted(bad, says):
    with pytest.raises(ConfigError, match=says):
        parse_uri(bad)


def test_unknown_and_bad_options_are_config_errors():
    frames = [np.zeros((4, 4, 3), np.uint8)]
    with pytest.raises(ConfigError, match="Did you mean 'color'"):
        open_source(frames, colour="rgb")
    with pytest.raises(ConfigError, match="unknown option 'loop'"):
        open_source(0, loop=True, capture_factory=FakeCamera().factory)
    with pytest.raises(ConfigError, match=r"width='abc'.*positive integer"):
        open_source("csi://0?width=abc", capture_factory=FakeCamera().factory)
    with pytest.raises(ConfigError, match="max_frames"):
        open_source(frames, max_frames=0)


# ----------------------------------------------------------------------------------------------- CSI


def test_csi_pipeline_string():
    assert csi_pipeline() == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! "
        "nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1"
    )
    p = csi_pipeline(1, 1920, 1080, 60, flip="rotate-180", sensor_mode=2)
    assert p.startswith("nvarguscamerasrc sensor-id=1 sensor-mode=2 ! ")
    assert "width=1920,height=1080,framerate=60/1" in p and "flip-method=2" in p
    assert "framerate=2997/100" in csi_pipeline(fps=29.97)
    with pytest.raises(ConfigError, match="flip"):
        csi_pipeline(flip=9)
    with pytest.raises(ConfigError, match="positive"):
        csi_pipeline(width=0)


def test_csi_without_gstreamer_is_a_clear_error(monkeypatch):
    import lsa_edge.sources.cameras as cameras

    monkeypatch.setattr(cameras, "gstreamer_available", lambda: False)
    with pytest.raises(MissingDependencyError, match="GStreamer") as err:
        open_source("csi://0")
    assert "v4l2:///dev/videoN" in str(err.value) and "JetPack" in str(err.value)


def test_csi_opens_the_pipeline_with_gstreamer():
    cam = FakeCamera()
    with open_source("csi://1?width=640&height=480&flip=2", capture_factory=cam.factory, fps=15) as src:
        frame = next(src)
    assert cam.calls[0] == (csi_pipeline(1, 640, 480, 15, flip=2), cv2.CAP_GSTREAMER, [])
    assert frame.image.shape == (24, 32, 3) and frame.source == "csi:1" and src.live


def test_stream_uses_ffmpeg_with_timeouts():
    cam = FakeCamera()
    with open_source("rtsp://u:pw@cam/s", capture_factory=cam.factory, read_timeout=3, max_frames=1) as src:
        assert len(list(src)) == 1
    target, api, params = cam.calls[0]
    assert (target, api) == ("rtsp://u:pw@cam/s", cv2.CAP_FFMPEG)
    assert cv2.CAP_PROP_READ_TIMEOUT_MSEC in params and 3000 in params
    assert src.name == "stream:rtsp://u:***@cam/s"


def test_v4l2_device_options_are_applied_pixel_format_first():
    cam = FakeCamera()
    uri = "v4l2:///dev/video7?width=1280&height=720&fourcc=MJPG"
    with open_source(uri, capture_factory=cam.factory, fps=60, max_frames=1) as src:
        list(src)
    assert cam.calls[0][:2] == ("/dev/video7", cv2.CAP_V4L2)
    assert cam.sets == [
        (cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG")),
        (cv2.CAP_PROP_FRAME_WIDTH, 1280.0),
        (cv2.CAP_PROP_FRAME_HEIGHT, 720.0),
        (cv2.CAP_PROP_FPS, 60.0),
    ]


def test_missing_v4l2_device_and_absent_camera_fail_at_open():
    with pytest.raises(DataError, match="no V4L2 device /dev/video99"):
        open_source("v4l2:///dev/video99")
    cam = FakeCamera()
    cam.online = False
    with pytest.raises(DataError, match=r"cannot open camera:0.*lsa-edge doctor"):
        open_source(0, capture_factory=cam.factory)


# ---------------------------------------------------------------------------------------------- files


def _write_video(path: Path, n: int = 12, fps: float = 10.0, size=(48, 64)) -> Path:
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG .avi")
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :, 0] = 200  # blue in BGR: checks that frames come back in BGR order
        img[:, :, 1] = 10 * i
        writer.write(img)
    writer.release()
    return path


def test_video_file_frames_size_and_timestamps(tmp_path):
    path = _write_video(tmp_path / "clip.avi")
    events = []
    with open_source(path, on_event=events.append) as src:
        assert not src.live and src.size == (48, 64) and src.fps == pytest.approx(10.0)
        frames = list(src)
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(12)], abs=1e-3)
    img = frames[5].image
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8 and img.flags.c_contiguous
    assert img[:, :, 0].mean() > 150 and img[:, :, 2].mean() < 60  # BGR
    assert abs(float(img[:, :, 1].mean()) - 50) < 15
    assert frames[0].source == f"video:{path}"
    assert [e.kind for e in events] == ["connected", "closed"] and src.closed


def test_video_loop_and_max_frames(tmp_path):
    path = _write_video(tmp_path / "clip.avi", n=5)
    with open_source(str(path), loop=True, max_frames=12) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    ts = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(ts, ts[1:]))  # no jump back at the loop
    assert ts[5] == pytest.approx(0.5, abs=1e-3) and ts[11] == pytest.approx(1.1, abs=1e-3)


def test_video_that_cannot_be_opened(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(DataError, match="cannot open the video"):
        open_source(bad)


def _png(path: Path, bgr=(255, 0, 0), size=(6, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((*size, 3), bgr, np.uint8))
    return path


def test_image_folder_natural_order_corrupt_file_skipped(tmp_path, caplog):
    for name in ("frame_1.png", "frame_2.png", "frame_10.png"):
        _png(tmp_path / name)
    (tmp_path / "frame_3.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "notes.txt").write_text("not an image")
    _png(tmp_path / "sub" / "frame_0.png")
    with caplog.at_level(logging.WARNING), open_source(tmp_path) as src:
        frames = list(src)
    assert [Path(f.path).name for f in frames] == ["frame_1.png", "frame_2.png", "frame_10.png"]
    assert [f.index for f in frames] == [0, 1, 3]  # the corrupt frame_3 leaves a gap
    assert src.stats.skipped == 1 and src.stats.delivered == 3
    assert any("frame_3.png" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert tuple(frames[0].image[0, 0]) == (255, 0, 0)  # BGR, though read_image decodes RGB
    assert len(list(open_source(tmp_path, recursive=True))) == 4


def test_single_image_glob_and_empty_folder(tmp_path):
    img = _png(tmp_path / "a.png", bgr=(0, 0, 255), size=(5, 7))
    with open_source(img, fps=5) as src:
        assert src.kind == "image" and src.size == (5, 7)
        frames = list(src)
    assert len(frames) == 1 and tuple(frames[0].image[0, 0]) == (0, 0, 255) and frames[0].timestamp == 0
    _png(tmp_path / "b.png")
    assert [Path(f.path).name for f in open_source(str(tmp_path / "*.png"))] == ["a.png", "b.png"]
    with pytest.raises(DataError, match="no images"):
        (tmp_path / "x.txt").write_text("x")
        open_source(str(tmp_path / "*.txt"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        open_source(tmp_path / "empty")
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="not a readable image"):
        open_source(tmp_path / "broken.jpg")


def test_image_loop(tmp_path):
    _png(tmp_path / "a.png")
    _png(tmp_path / "b.png")
    frames = list(open_source(tmp_path, loop=True, max_frames=5, fps=10))
    assert [Path(f.path).name for f in frames] == ["a.png", "b.png", "a.png", "b.png", "a.png"]
    assert [f.timestamp for f in frames] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])


# ------------------------------------------------------------------------------------------ iterables


def test_iterable_of_arrays_bad_frames_skipped_with_their_index(caplog):
    good = np.zeros((8, 8, 3), np.uint8)
    good[..., 0] = 7
    items = [
        good,  # 0: kept
        None,  # 1: skipped
        np.zeros((0, 0, 3), np.uint8),  # 2: empty, skipped
        np.full((8, 8), 9, np.uint8),  # 3: grayscale → 3 channels
        np.full((8, 8, 3), 0xFF00, np.uint16),  # 4: 16-bit → 255
        np.full((8, 8, 3), 0.5, np.float32),  # 5: float in [0, 1] → 128
        np.full((8, 8, 3), np.nan, np.float32),  # 6: NaN, skipped
        np.zeros((8, 8, 3), np.int64),  # 7: wrong dtype, skipped
        np.zeros((8, 8, 2), np.uint8),  # 8: wrong shape, skipped
        "not an image",  # 9: skipped
    ]
    with caplog.at_level(logging.WARNING), open_source(iter(items), fps=10) as src:
        frames = list(src)
    assert [f.index for f in frames] == [0, 3, 4, 5]
    assert frames[0].image[0, 0, 0] == 7
    assert frames[1].image.shape == (8, 8, 3) and (frames[1].image == 9).all()
    assert (frames[2].image == 255).all() and (frames[3].image == 128).all()
    assert all(f.image.dtype == np.uint8 and f.image.ndim == 3 for f in frames)
    assert [f.timestamp for f in frames] == pytest.approx([0.0, 0.3, 0.4, 0.5])
    assert src.stats.skipped == 6 and src.stats.read == 10
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for k in (1, 2, 6, 7, 8, 9):
        assert f"frame {k}:" in warned


def test_iterable_rgb_flag_array_stack_and_max_frames():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255  # red in RGB
    (frame,) = list(open_source([rgb], color="rgb"))
    assert tuple(frame.image[0, 0]) == (0, 0, 255)  # red in BGR
    assert tuple(next(open_source([rgb])).image[0, 0]) == (255, 0, 0)  # default: taken as BGR
    stack = np.zeros((10, 4, 6, 3), np.uint8)
    with open_source(stack, max_frames=3) as src:
        assert src.size == (4, 6)
        assert [f.index for f in src] == [0, 1, 2]
    assert src.closed
    assert open_source(src) is src  # an opened source passes through
    with pytest.raises(ConfigError, match="already open"):
        open_source(src, max_frames=2)


def test_to_bgr_uint8_rules():
    assert to_bgr_uint8(np.zeros((3, 3, 4), np.uint8)).shape == (3, 3, 3)  # alpha dropped
    assert to_bgr_uint8(np.full((2, 2, 1), 5, np.uint8)).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="None"):
        to_bgr_uint8(None)
    with pytest.raises(ValueError, match="float16"):
        to_bgr_uint8(np.zeros((2, 2, 3), np.float16))


# --------------------------------------------------------------------------------------- live, faked


class FakeCapture:
    """A VideoCapture-like device of a FakeCamera: delivers numbered frames every ``period`` seconds; once
    the camera goes offline this capture stays dead, like an unplugged USB camera."""

    def __init__(self, cam: FakeCamera):
        self.cam = cam
        self.opened = cam.online
        self.dead = False

    def isOpened(self):
        return self.opened

    def read(self):
        time.sleep(self.cam.period)
        if not self.cam.online:
            self.dead = True
        if self.dead or not self.opened:
            return False, None
        with self.cam.lock:
            self.cam.count += 1
            n = self.cam.count
        return True, np.full((24, 32, 3), n % 256, np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_WIDTH: 32, cv2.CAP_PROP_FRAME_HEIGHT: 24}.get(
            prop, 0.0
        )

    def set(self, prop, value):
        self.cam.sets.append((prop, value))
        return True

    def release(self):
        self.opened = False


class FakeCamera:
    def __init__(self, period: float = 0.002):
        self.online = True
        self.period = period
        self.count = 0
        self.lock = threading.Lock()
        self.calls: list[tuple] = []
        self.sets: list[tuple] = []

    def factory(self, target, api, params):
        self.calls.append((target, api, params))
        return FakeCapture(self)


FAST = {"read_timeout": 0.05, "reconnect_delay": 0.01, "reconnect_max_delay": 0.02}


def _wait_for(src: Source, kind: str, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not any(e.kind == kind for e in src.events):
        assert time.monotonic() < end, f"no {kind!r} event; got {[e.kind for e in src.events]}"
        time.sleep(0.005)


def test_camera_drops_out_and_comes_back():
    cam = FakeCamera()
    seen = []
    with open_source(0, capture_factory=cam.factory, on_event=seen.append, **FAST) as src:
        assert src.live and src.fps == 30.0 and src.size == (24, 32)
        before = [next(src) for _ in range(3)]
        cam.online = False
        _wait_for(src, "reconnecting")
        cam.online = True
        _wait_for(src, "reconnected")
        after = [next(src) for _ in range(3)]
    kinds = [e.kind for e in src.events]
    assert kinds[0] == "connected" and kinds[-1] == "closed"
    lost = kinds.index("lost")
    assert kinds[lost + 1] == "reconnecting" and "reconnected" in kinds[lost + 1 :]
    attempts = [e.attempt for e in src.events if e.kind == "reconnecting"]
    assert attempts == list(range(1, len(attempts) + 1))
    assert [e.kind for e in seen] == kinds  # the callback saw the same sequence
    idx = [f.index for f in before + after]
    assert all(b > a for a, b in zip(idx, idx[1:]))
    assert after[-1].timestamp > before[-1].timestamp
    assert src.stats.reconnects == 1 and src.error is None
    assert len(cam.calls) >= 2  # reopened through the factory
    assert cam.calls[0][:2] == (0, camera_api())


def test_camera_that_never_comes_back_gives_up(caplog):
    cam = FakeCamera()
    src = open_source("1", capture_factory=cam.factory, max_reconnects=3, **FAST)
    next(src)
    cam.online = False
    with caplog.at_level(logging.ERROR):
        rest = list(src)  # ends instead of raising or hanging
    assert len(rest) <= 1 and src.closed
    kinds = [e.kind for e in src.events]
    assert kinds[-2:] == ["gave_up", "closed"]
    assert [e.attempt for e in src.events if e.kind == "reconnecting"] == [1, 2, 3]
    assert "gave up after 3 reconnection attempt" in src.error
    assert any("gave up" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_slow_consumer_gets_the_latest_frame():
    cam = FakeCamera(period=0.001)
    frames = []
    with open_source(0, capture_factory=cam.factory, max_frames=5) as src:
        for f in src:
            frames.append(f)
            time.sleep(0.02)  # a slow consumer: the camera delivers ~10 frames meanwhile
    idx = [f.index for f in frames]
    assert len(frames) == 5
    assert all(b > a for a, b in zip(idx, idx[1:]))
    assert any(b - a > 1 for a, b in zip(idx, idx[1:]))
    assert src.stats.dropped > 0 and src.stats.read > src.stats.delivered


def test_reconnect_policy_backoff():
    p = ReconnectPolicy(initial_delay=0.5, factor=2, max_delay=3, max_attempts=5)
    assert list(p.delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]
    forever = ReconnectPolicy().delays()
    assert len([next(forever) for _ in range(50)]) == 50
    with pytest.raises(ConfigError, match="max_attempts"):
        ReconnectPolicy(max_attempts=0)


# ------------------------------------------------------------------------------------------- doctor


def test_doctor_runs_here_and_writes_json(tmp_path, capsys):
    from lsa_edge.cli import main

    out = tmp_path / "doctor.json"
    assert main(["doctor", "--json", str(out), "--camera-timeout", "1"]) == 0
    report = json.loads(out.read_text())
    s = report["sections"]
    assert set(s) >= {"system", "opencv", "cameras", "onnxruntime", "tensorrt", "gpu", "torch", "models"}
    assert s["opencv"]["opencv"] == cv2.__version__ and isinstance(s["opencv"]["gstreamer"], bool)
    assert s["cameras"]["probed"] is True and isinstance(s["cameras"]["cameras"], list)
    assert s["gpu"]["name"] or s["gpu"]["error"]  # no GPU here: reported, not raised
    assert s["models"]["detectors"]["full"].endswith("blazeface_full_range.onnx")
    assert {r["section"] for r in report["rows"]} >= {"opencv", "gpu", "models"}
    assert report["summary"][0].startswith("sources: files")
    assert "lsa-edge doctor" in capsys.readouterr().out


def test_doctor_does_not_import_torch_when_absent(monkeypatch):
    import lsa_edge._lazy
    from lsa_edge.cli import doctor

    monkeypatch.setattr(lsa_edge._lazy, "available", lambda name: name != "torch")
    data, rows = doctor._torch()
    assert data == {"installed": False} and rows[0][1] == "no"
    report = doctor.collect(cameras=None)
    assert report["sections"]["cameras"] == {"probed": False}


# ------------------------------------------------------------- live, faked: devices that open but stall


class DeadCapture:
    """Opens fine, never delivers: read() returns (False, None), raises, or blocks until released (a claimed
    USB camera, a wrong pixel format, an RTSP server that accepts and sends nothing, a stalled network)."""

    def __init__(self, mode: str = "empty", message: str = "boom"):
        self.mode, self.message = mode, message
        self.released = threading.Event()
        self.unblock = threading.Event()
        self.reads = 0

    def isOpened(self):
        return True

    def read(self):
        self.reads += 1
        if self.mode == "block":
            self.unblock.wait(5.0)  # a driver stuck in read() (the test unblocks it at the end)
            return False, None
        time.sleep(0.002)
        if self.mode == "raise":
            raise RuntimeError(self.message)
        return False, None

    def get(self, prop):
        return 0.0

    def release(self):
        self.released.set()
        self.unblock.set()


def _dead_factory(mode: str, message: str = "boom"):
    caps: list[DeadCapture] = []

    def factory(target, api, params):
        caps.append(DeadCapture(mode, message))
        return caps[-1]

    return factory, caps


@pytest.mark.parametrize("mode", ["empty", "raise"])
def test_capture_that_opens_but_never_delivers_gives_up(mode):
    factory, caps = _dead_factory(mode)
    t0 = time.monotonic()
    src = open_source(0, capture_factory=factory, max_reconnects=2, **FAST)
    assert list(src) == []  # ends: before the fix every re-open counted as "reconnected", forever
    assert time.monotonic() - t0 < 3
    kinds = [e.kind for e in src.events]
    assert kinds.count("lost") == 1 and "reconnected" not in kinds
    assert [e.attempt for e in src.events if e.kind == "reconnecting"] == [1, 2]
    assert kinds[-2:] == ["gave_up", "closed"] and src.stats.reconnects == 0
    assert "camera:0: gave up after 2 reconnection attempt(s)" in src.error
    assert "opened but delivered no frame" in src.error
    assert ("RuntimeError: boom" if mode == "raise" else "returned no frame") in src.error
    assert len(caps) == 3 and all(c.released.is_set() for c in caps)  # every capture released


def test_reconnection_counts_only_once_a_frame_arrives():
    """A camera that drops, re-opens without frames for a while, then delivers: one loss, one reconnect."""
    cam = FakeCamera()
    opens = {"n": 0}

    def factory(target, api, params):
        opens["n"] += 1
        if opens["n"] >= 2:
            cam.online = True  # the first capture stays dead (like an unplugged one); new ones may work
        return DeadCapture() if 2 <= opens["n"] <= 3 else FakeCapture(cam)  # 2nd, 3rd open: no frames

    with open_source(0, capture_factory=factory, max_reconnects=5, **FAST) as src:
        next(src)
        cam.online = False  # the first capture dies
        _wait_for(src, "reconnected")
        after = next(src)
    kinds = [e.kind for e in src.events]
    assert kinds.count("lost") == 1 and kinds.count("reconnected") == 1
    assert [e.attempt for e in src.events if e.kind == "reconnecting"] == [1, 2, 3]
    assert src.stats.reconnects == 1 and src.error is None and after.index > 0


def test_dead_stream_error_hides_the_password():
    url = "rtsp://admin:s3cret@10.0.0.2/live"
    factory, _ = _dead_factory("raise", message=f"could not read from {url}")
    src = open_source(url, capture_factory=factory, max_reconnects=1, **FAST)
    assert list(src) == []
    assert src.error and "s3cret" not in src.error and "admin:***@10.0.0.2" in src.error
    assert all("s3cret" not in e.message for e in src.events)


def test_read_that_blocks_forever_counts_as_lost_and_reconnects():
    cam = FakeCamera()
    stuck = DeadCapture("block")
    opens = {"n": 0}

    def factory(target, api, params):
        opens["n"] += 1
        return stuck if opens["n"] == 1 else FakeCapture(cam)

    t0 = time.monotonic()
    with open_source(0, capture_factory=factory, **FAST) as src:
        frame = next(src)  # the first capture never returns from read(): the second one delivers
    assert time.monotonic() - t0 < 2
    lost = next(e for e in src.events if e.kind == "lost")
    assert "blocked" in lost.message and src.stats.reconnects == 1 and frame.index == 0
    assert not stuck.released.is_set()  # never released while its read() is in progress (not thread-safe)
    stuck.unblock.set()  # the driver returns at last: the abandoned reader releases its capture
    assert stuck.released.wait(1.0)


def test_stalled_reads_do_not_pile_up_threads():
    factory, caps = _dead_factory("block")
    before = threading.active_count()
    src = open_source(0, capture_factory=factory, max_reconnects=8, **FAST)
    assert list(src) == []
    assert "still blocked in read()" in src.error
    assert len(caps) <= 1 + 3  # the first capture and MAX_STUCK_READERS more, not one per attempt
    for c in caps:
        c.unblock.set()
    end = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < end:
        time.sleep(0.01)
    assert threading.active_count() <= before


@pytest.mark.parametrize("mode", ["live", "stalled"])
def test_close_from_another_thread_ends_iteration_promptly(mode):
    cam = FakeCamera()
    factory, caps = cam.factory, []
    if mode == "stalled":
        factory, caps = _dead_factory("block")
    src = open_source(0, capture_factory=factory, read_timeout=5.0)
    got: list = []
    consumer = threading.Thread(target=lambda: got.extend(src))
    consumer.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    closer = threading.Thread(target=src.close)
    closer.start()
    consumer.join(1.0)
    assert not consumer.is_alive() and time.monotonic() - t0 < 1.0
    for c in caps:
        c.unblock.set()  # close() waits (up to read_timeout + 1 s) for the capture to be released
    closer.join(7.0)
    assert not closer.is_alive() and all(c.released.is_set() for c in caps)
    src.close()  # twice: harmless
    assert src.closed and [e.kind for e in src.events].count("closed") == 1
    assert src.error is None


def test_close_from_another_thread_while_a_generator_is_producing():
    gate, finished = threading.Event(), []

    def frames():
        try:
            yield np.zeros((4, 4, 3), np.uint8)
            gate.wait(2.0)  # the consumer is inside the generator when close() comes
            yield np.zeros((4, 4, 3), np.uint8)
            yield np.zeros((4, 4, 3), np.uint8)
        finally:
            finished.append(True)

    src = open_source(frames())
    next(src)
    got: list = []
    consumer = threading.Thread(target=lambda: got.extend(src))
    consumer.start()
    time.sleep(0.05)
    src.close()  # was: ValueError "generator already executing" out of close()
    src.close()
    gate.set()
    consumer.join(2.0)
    assert not consumer.is_alive() and got == [] and finished == [True]


def test_close_video_from_another_thread_and_twice(tmp_path):
    path = _write_video(tmp_path / "clip.avi", n=20)
    src = open_source(path, loop=True)
    count = {"n": 0}

    def consume():
        for _ in src:
            count["n"] += 1

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.05)
    closers = [threading.Thread(target=src.close) for _ in range(3)]
    for t in closers:
        t.start()
    for t in closers:
        t.join(2.0)
    consumer.join(2.0)
    assert not consumer.is_alive() and count["n"] > 0
    assert [e.kind for e in src.events].count("closed") == 1
    assert src._cap.isOpened() is False


# ------------------------------------------------------------------------------ folders: sub-folders


def _nest(root: Path) -> Path:
    for rel in ("top.png", "a/mid.png", "a/b/deep.png", "a/b/deeper_10.png", "a/b/deeper_9.png"):
        _png(root / rel)
    (root / "a" / "notes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "a" / "notes.txt").write_text("not an image")
    return root


def test_double_star_pattern_is_recursive_and_sorted(tmp_path):
    root = _nest(tmp_path / "nest")
    names = [Path(f.path).relative_to(root).as_posix() for f in open_source(str(root / "**" / "*.png"))]
    # before: only "a/mid.png" ("**" acted as one "*")
    assert names == ["a/b/deep.png", "a/b/deeper_9.png", "a/b/deeper_10.png", "a/mid.png", "top.png"]
    assert [Path(f.path).name for f in open_source(str(root / "**" / "*.png"), recursive=False)] == [
        "mid.png"
    ]
    assert [Path(f.path).name for f in open_source(str(root / "*.png"))] == ["top.png"]  # "*" stays one level


def test_folder_recursive_option_and_warning_for_skipped_sub_folders(tmp_path, caplog):
    root = _nest(tmp_path / "nest")
    with caplog.at_level(logging.WARNING):
        top = [Path(f.path).name for f in open_source(root)]
    assert top == ["top.png"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("sub-folders" in m and "recursive=True" in m and "/**/*.png" in m for m in warned)
    every = [Path(f.path).relative_to(root).as_posix() for f in open_source(root, recursive="true")]
    assert every == ["a/b/deep.png", "a/b/deeper_9.png", "a/b/deeper_10.png", "a/mid.png", "top.png"]
    assert every == [
        Path(f.path).relative_to(root).as_posix() for f in open_source(str(root / "**" / "*.png"))
    ]
    with pytest.raises(ConfigError, match="recursive"):
        open_source(root, recursive="maybe")


def test_folder_with_images_only_in_sub_folders_names_what_to_type(tmp_path):
    root = tmp_path / "only nested"
    _png(root / "a" / "x.jpg")
    with pytest.raises(DataError) as err:
        open_source(root)
    msg = str(err.value)
    assert "recursive=True" in msg  # the Python option ...
    assert f"--source '{root}/**/*.jpg'" in msg  # ... and what the command line accepts today, quoted
    assert [Path(f.path).name for f in open_source(root, recursive=True)] == ["x.jpg"]
    assert [Path(f.path).name for f in open_source(str(root / "**" / "*.jpg"))] == ["x.jpg"]
    (tmp_path / "nothing" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match="no image files") as err:
        open_source(tmp_path / "nothing")
    assert "recursive=True" not in str(err.value)  # no images below either: no misleading hint


def test_open_that_never_returns_is_bounded():
    """A driver or server that never answers the open (first open or a reconnection) cannot hang the source."""
    gate = threading.Event()
    late = DeadCapture()

    def hanging(target, api, params):
        gate.wait(5.0)
        return late

    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"cannot open camera:0: opening did not finish within 0.2 s"):
        open_source(0, capture_factory=hanging, open_timeout=0.2)
    assert time.monotonic() - t0 < 1.5
    gate.set()
    assert late.released.wait(1.0)  # the capture that arrived late is released, not leaked

    cam, opens, gate2 = FakeCamera(), {"n": 0}, threading.Event()

    def second_open_hangs(target, api, params):
        opens["n"] += 1
        if opens["n"] > 1:
            gate2.wait(5.0)
        return FakeCapture(cam)

    src = open_source(0, capture_factory=second_open_hangs, open_timeout=0.1, max_reconnects=2, **FAST)
    next(src)
    cam.online = False
    t0 = time.monotonic()
    assert len(list(src)) <= 1 and time.monotonic() - t0 < 2
    assert "gave up after 2" in src.error and "opening did not finish" in src.error
    gate2.set()


def test_close_during_a_hanging_reconnection_is_prompt():
    cam, opens, gate = FakeCamera(), {"n": 0}, threading.Event()

    def second_open_hangs(target, api, params):
        opens["n"] += 1
        if opens["n"] > 1:
            gate.wait(5.0)
        return FakeCapture(cam)

    src = open_source(0, capture_factory=second_open_hangs, **FAST)  # open_timeout 30 s
    next(src)
    cam.online = False
    _wait_for(src, "reconnecting")
    time.sleep(0.05)  # the supervisor is inside the hanging open
    t0 = time.monotonic()
    src.close()
    assert time.monotonic() - t0 < 1.0 and list(src) == []
    gate.set()
