"""Cameras and network streams through OpenCV's VideoCapture, read as :class:`LiveSource` (latest frame,
reconnection): a camera index, a V4L2 device, a Jetson CSI camera (GStreamer ``nvarguscamerasrc``) and
RTSP/RTMP/HTTP streams (FFmpeg). Also what OpenCV's build can do (:func:`video_backends`) and a quick
camera probe (:func:`probe_cameras`) for ``lsa-edge doctor``.

Imports OpenCV and the standard library only.
"""

from __future__ import annotations

import glob
import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, List  # typing: CaptureFactory is subscripted at run time (Python 3.8)

from .._opencv import cv2
from ..errors import ConfigError, DataError, MissingDependencyError
from ._options import COMMON, LIVE, fourcc, nonneg_int, positive_float, positive_int
from ._uri import SourceSpec
from .live import LiveSource, ReconnectPolicy

log = logging.getLogger(__name__)

# nvvidconv's flip-method values (gst-inspect-1.0 nvvidconv); 1, 3, 5 and 7 swap width and height.
FLIP_METHODS = (
    "none",
    "counterclockwise",
    "rotate-180",
    "clockwise",
    "horizontal-flip",
    "upper-right-diagonal",
    "vertical-flip",
    "upper-left-diagonal",
)


def flip_method(v: Any) -> int:
    """0..7 or one of ``FLIP_METHODS``."""
    s = str(v).strip().lower()
    if s in FLIP_METHODS:
        return FLIP_METHODS.index(s)
    if s.isdigit() and int(s) < len(FLIP_METHODS):
        return int(s)
    raise ValueError(f"expected 0..7 or one of {', '.join(FLIP_METHODS)}")


_DEVICE = {
    "width": positive_int,  # requested frame width, pixels (the device may pick the nearest mode)
    "height": positive_int,  # requested frame height, pixels
    "fps": positive_float,  # requested frame rate
}
CAMERA_OPTIONS = {**COMMON, **LIVE, **_DEVICE, "fourcc": fourcc}  # fourcc: pixel format, e.g. MJPG, YUYV
CSI_OPTIONS = {
    **COMMON,
    **LIVE,
    **_DEVICE,
    "framerate": positive_float,  # the same as fps (GStreamer's word)
    "flip": flip_method,  # nvvidconv flip-method, 0..7 or its name
    "sensor_mode": nonneg_int,  # nvarguscamerasrc sensor-mode (default: chosen from width/height/fps)
}
STREAM_OPTIONS = {**COMMON, **LIVE}

CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30.0}
READ_TIMEOUT = {"camera": 2.0, "v4l2": 2.0, "csi": 2.0, "stream": 5.0}  # seconds; networks stall longer
OPEN_TIMEOUT = {"camera": 30.0, "v4l2": 30.0, "csi": 30.0, "stream": 10.0}  # seconds (Argus can take a while)


def camera_api() -> int:
    """How camera indices are opened: V4L2 on Linux, not OpenCV's first choice (GStreamer where built in,
    whose v4l2src ignores width/height/fourcc requests); the platform's default elsewhere. A function, not
    a constant, so that importing this module works without OpenCV."""
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


CaptureFactory = Callable[[Any, int, List[int]], Any]


# ------------------------------------------------------------------------------------- OpenCV's build


def _build_value(info: str, key: str) -> str:
    m = re.search(rf"^\s*{re.escape(key)}:\s*(.+?)\s*$", info, re.MULTILINE)
    return m.group(1) if m else ""


@lru_cache(maxsize=1)
def video_backends() -> dict[str, Any]:
    """What this OpenCV can read video with: the build's GStreamer / FFmpeg / V4L2 / CUDA flags (from
    ``cv2.getBuildInformation()``; plugin backends count too) and ``cv2.videoio_registry``'s backend lists."""
    info = cv2.getBuildInformation()
    reg = cv2.videoio_registry

    def has(api: int) -> bool:
        try:
            return bool(reg.hasBackend(api))
        except Exception:
            return False

    def names(ids: Any) -> list[str]:  # the registry also lists plugin backends that failed to load
        return list(dict.fromkeys(reg.getBackendName(b) for b in ids if has(b)))

    gst = _build_value(info, "GStreamer")
    return {
        "opencv": cv2.__version__,
        "gstreamer": gst.upper().startswith("YES") or has(cv2.CAP_GSTREAMER),
        "gstreamer_build": gst or "not listed",
        "ffmpeg": _build_value(info, "FFMPEG").upper().startswith("YES") or has(cv2.CAP_FFMPEG),
        "v4l2": _build_value(info, "v4l/v4l2").upper().startswith("YES") or has(cv2.CAP_V4L2),
        "cuda": _build_value(info, "NVIDIA CUDA").upper().startswith("YES"),
        "backends": names(reg.getBackends()),
        "camera_backends": names(reg.getCameraBackends()),
        "stream_backends": names(reg.getStreamBackends()),
    }


def gstreamer_available() -> bool:
    return bool(video_backends()["gstreamer"])


# ------------------------------------------------------------------------------------------- CSI


def csi_pipeline(
    sensor_id: int = 0,
    width: int = 1280,
    height: int = 720,
    fps: float = 30.0,
    flip: int | str = 0,
    sensor_mode: int | None = None,
) -> str:
    """The GStreamer pipeline for a Jetson CSI camera (``nvarguscamerasrc``), ending in BGR frames on an
    appsink that keeps only the newest buffer. width×height is the capture mode asked of Argus; flip
    1/3/5/7 (90° turns) swap the delivered frame's width and height."""
    if sensor_id < 0:
        raise ConfigError(f"CSI sensor id must be 0 or more, got {sensor_id}")
    if width < 1 or height < 1 or not fps > 0:
        raise ConfigError(f"CSI mode must be positive, got {width}×{height} at {fps} fps")
    try:
        flip_id = flip_method(flip)
    except ValueError as err:
        raise ConfigError(f"CSI flip {flip!r}: {err}") from None
    rate = Fraction(str(fps)).limit_denominator(1001)
    mode = f" sensor-mode={int(sensor_mode)}" if sensor_mode is not None else ""
    return (
        f"nvarguscamerasrc sensor-id={int(sensor_id)}{mode} ! "
        f"video/x-raw(memory:NVMM),width={int(width)},height={int(height)},"
        f"framerate={rate.numerator}/{rate.denominator} ! "
        f"nvvidconv flip-method={flip_id} ! video/x-raw,format=BGRx ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1"
    )


def _require_gstreamer(what: str) -> None:
    if gstreamer_available():
        return
    from .._opencv import JETSON_APT, inspect

    b, facts = video_backends(), inspect()
    origin = f"PyPI's {facts['wheel']}" if facts.get("wheel") else "a system build"
    raise MissingDependencyError(
        f"{what} needs OpenCV built with GStreamer, but this OpenCV {b['opencv']} ({origin}, "
        f"{facts.get('file')}) has none (cv2.getBuildInformation(): GStreamer: {b['gstreamer_build']}). "
        "On a Jetson use JetPack's OpenCV (it has GStreamer): pip uninstall opencv-python "
        f"opencv-python-headless, then {JETSON_APT} (or python3-opencv), and create the virtual environment "
        "with --system-site-packages; lsa-edge doctor shows which OpenCV is in use. A USB camera works "
        "without GStreamer as v4l2:///dev/videoN."
    )


# --------------------------------------------------------------------------------------- openers


def _policy(kind: str, opts: dict[str, Any]) -> ReconnectPolicy:
    initial = opts.get("reconnect_delay", 0.5)
    return ReconnectPolicy(
        read_timeout=opts.get("read_timeout", READ_TIMEOUT[kind]),
        initial_delay=initial,
        max_delay=max(opts.get("reconnect_max_delay", 10.0), initial),
        max_attempts=opts.get("max_reconnects"),
        # streams: FFmpeg's own open timeout fires first (a clearer message); this bounds what it misses
        open_timeout=opts.get("open_timeout", OPEN_TIMEOUT[kind]) + (5.0 if kind == "stream" else 0.0),
    )


def _capture_opener(
    factory: CaptureFactory, target: Any, api: int, params: list[int], props: list[tuple[int, float, str]]
) -> Callable[[], Any]:
    """A no-argument function that opens the capture and applies the requested properties."""

    def open_capture() -> Any:
        cap = factory(target, api, params)
        if cap is None or not cap.isOpened():
            return cap
        for prop, value, label in props:
            try:
                ok = bool(cap.set(prop, value))
            except Exception:
                ok = False
            if not ok:
                log.warning("%s: the device refused %s=%s; it keeps its own", target, label, value)
        return cap

    return open_capture


def _device_props(opts: dict[str, Any]) -> list[tuple[int, float, str]]:
    props: list[tuple[int, float, str]] = []
    if "fourcc" in opts:  # first: the pixel format decides which sizes and rates exist
        code = cv2.VideoWriter_fourcc(*opts["fourcc"])  # type: ignore[attr-defined]  # missing from the stubs
        props.append((cv2.CAP_PROP_FOURCC, code, "fourcc"))
    for key, prop in (
        ("width", cv2.CAP_PROP_FRAME_WIDTH),
        ("height", cv2.CAP_PROP_FRAME_HEIGHT),
        ("fps", cv2.CAP_PROP_FPS),
    ):
        if key in opts:
            props.append((prop, float(opts[key]), key))
    return props


def _live(spec: SourceSpec, opts: dict[str, Any], open_capture: Callable[[], Any], hint: str) -> LiveSource:
    return LiveSource(
        opts.get("name", spec.name),
        open_capture,
        kind=spec.kind,
        policy=_policy(spec.kind, opts),
        hint=hint,
        max_frames=opts.get("max_frames"),
        on_event=opts.get("on_event"),
    )


_CAMERA_HINT = (
    "Is it plugged in and free (not used by another program)? lsa-edge doctor lists the cameras found."
)


def open_camera(spec: SourceSpec, opts: dict[str, Any]) -> LiveSource:
    """A camera by index (:func:`camera_api`) or a V4L2 device path (``CAP_V4L2``)."""
    factory = opts.get("capture_factory") or cv2.VideoCapture
    api = camera_api() if spec.kind == "camera" else cv2.CAP_V4L2
    if spec.kind == "v4l2" and not opts.get("capture_factory") and not Path(spec.target).exists():
        found = ", ".join(sorted(glob.glob("/dev/video*"))) or "none"
        raise DataError(f"no V4L2 device {spec.target} (devices present: {found}). {_CAMERA_HINT}")
    opener = _capture_opener(factory, spec.target, api, [], _device_props(opts))
    return _live(spec, opts, opener, _CAMERA_HINT)


def open_csi(spec: SourceSpec, opts: dict[str, Any]) -> LiveSource:
    mode = {k: opts.get(k, v) for k, v in CSI_DEFAULTS.items()}
    mode["fps"] = opts.get("framerate", mode["fps"])
    pipeline = csi_pipeline(
        spec.target, flip=opts.get("flip", 0), sensor_mode=opts.get("sensor_mode"), **mode
    )
    factory = opts.get("capture_factory")
    if factory is None:
        _require_gstreamer(f"csi://{spec.target}")
        factory = cv2.VideoCapture
    log.debug("%s: %s", spec.name, pipeline)
    hint = (
        "Check the ribbon cable and that nvargus-daemon runs (sudo systemctl restart nvargus-daemon), and that "
        "the width/height/fps are a mode of the sensor; the pipeline was: " + pipeline
    )
    return _live(spec, opts, _capture_opener(factory, pipeline, cv2.CAP_GSTREAMER, [], []), hint)


def open_stream(spec: SourceSpec, opts: dict[str, Any]) -> LiveSource:
    """RTSP/RTMP/HTTP through FFmpeg, with open and read timeouts so a dead server cannot block forever."""
    read_ms = int(1000 * opts.get("read_timeout", READ_TIMEOUT["stream"]))
    open_ms = int(1000 * opts.get("open_timeout", OPEN_TIMEOUT["stream"]))
    params: list[int] = []
    if hasattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC"):  # OpenCV ≥ 4.6
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms]
    factory = opts.get("capture_factory") or cv2.VideoCapture
    hint = "Check the URL, credentials and network (try it in ffplay or VLC)."
    return _live(spec, opts, _capture_opener(factory, spec.target, cv2.CAP_FFMPEG, params, []), hint)


# ----------------------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class CameraInfo:
    """One probed camera. uri: what to pass to open_source; opened: OpenCV opened it; frame: it delivered
    a frame within the timeout (None: not tried); size: (height, width)."""

    uri: str
    name: str = ""
    opened: bool = False
    frame: bool | None = None
    size: tuple[int, int] | None = None
    fps: float | None = None
    backend: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV prints a WARN line per device it cannot open; probing expects failures."""
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_mod is None:
        yield
        return
    old = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_mod.setLogLevel(old)


def _probe_one(uri: str, target: Any, api: int, name: str, read_frame: bool) -> CameraInfo:
    cap = cv2.VideoCapture(target, api)
    try:
        if not cap.isOpened():
            return CameraInfo(uri, name, error="OpenCV could not open it (not a capture device, or busy)")
        h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        frame = None
        if read_frame:
            ok, image = cap.read()
            frame = bool(ok and image is not None)
        return CameraInfo(
            uri,
            name,
            True,
            frame,
            (h, w) if h > 0 and w > 0 else None,
            fps if fps > 0 else None,
            cap.getBackendName(),
        )
    finally:
        cap.release()


def probe_cameras(max_index: int = 4, timeout: float = 2.0, read_frame: bool = True) -> list[CameraInfo]:
    """The cameras OpenCV can open, without hanging: on Linux every /dev/videoN (V4L2; none present means no
    camera, nothing else is tried), elsewhere indices 0..max_index-1. Each probe gets ``timeout`` seconds
    in its own thread; one that does not answer is reported as such and left to finish on its own."""
    if sys.platform.startswith("linux"):
        devices = sorted(glob.glob("/dev/video*"), key=lambda p: int(re.sub(r"\D", "", p) or 0))
        jobs = []
        for dev in devices:
            sysname = Path("/sys/class/video4linux") / Path(dev).name / "name"
            try:
                label = sysname.read_text().strip()
            except OSError:
                label = ""
            jobs.append((f"v4l2://{dev}", dev, cv2.CAP_V4L2, label))
    else:
        jobs = [(str(i), i, cv2.CAP_ANY, "") for i in range(max_index)]
    with _quiet_opencv():
        return [
            _probe_in_thread(uri, target, api, label, read_frame, timeout) for uri, target, api, label in jobs
        ]


def _probe_in_thread(
    uri: str, target: Any, api: int, label: str, read_frame: bool, timeout: float
) -> CameraInfo:
    box: list[CameraInfo] = []

    def work() -> None:
        try:
            box.append(_probe_one(uri, target, api, label, read_frame))
        except Exception as err:
            box.append(CameraInfo(uri, label, error=f"{type(err).__name__}: {err}"))

    t = threading.Thread(target=work, name=f"lsa-edge probe {uri}", daemon=True)
    t.start()
    t.join(timeout)
    return box[0] if box else CameraInfo(uri, label, error=f"no answer within {timeout:g} s")
