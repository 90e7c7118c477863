"""``lsa-edge doctor``: what this machine can run — Python and library versions, OpenCV's video I/O
(GStreamer for CSI cameras, FFmpeg for streams, V4L2 for USB cameras), the cameras present, ONNX Runtime's
providers, TensorRT, the GPU, CUDA through torch, and the shipped models. Always exits 0: a missing piece
is a finding, not a failure. Optional packages are imported only when installed, inside ``run``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
from pathlib import Path
from typing import Any, Tuple  # typing: Row is subscripted at run time (Python 3.8)

from ._common import user_path, write_json

HELP = "report what this machine can run: versions, OpenCV video I/O, cameras, ONNX Runtime, TensorRT, GPU"
log = logging.getLogger(__name__)

# status → rich style; "no" is an optional piece that is absent, "fail" one that is present but broken
_STYLE = {"ok": "green", "no": "yellow", "fail": "bold red", "info": "cyan"}
Row = Tuple[str, str, str]  # (item, status, detail)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help=HELP,
        description=HELP + ". Probes cameras briefly (each in its own thread with a timeout, so a missing or "
        "stuck device cannot hang it). Exit status 0.",
        epilog="Example: lsa-edge doctor --json doctor.json",
    )
    p.add_argument("--json", metavar="OUT", type=user_path, help="write the report as JSON")
    p.add_argument("--no-cameras", action="store_true", help="do not probe cameras")
    p.add_argument(
        "--camera-timeout",
        type=float,
        default=2.0,
        metavar="S",
        help="seconds each camera probe may take (default: 2)",
    )
    p.add_argument(
        "--max-cameras",
        type=int,
        default=4,
        metavar="N",
        help="camera indices 0..N-1 probed where there is no /dev/video* (not Linux; default: 4)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ._common import check_json_out

    check_json_out(args.json)  # a mistake costs a second, not the whole run
    cameras = None if args.no_cameras else (args.camera_timeout, args.max_cameras)
    report = collect(cameras)
    if args.json:  # the file first: a closed stdout (| head) must not lose it
        log.info("wrote %s", write_json(args.json, report))
    print_report(report)
    return 0


def collect(cameras: tuple[float, int] | None = (2.0, 4)) -> dict[str, Any]:
    """The whole report as JSON-ready data: ``sections`` (name → data) and ``rows`` for the table.
    cameras: (probe timeout in seconds, indices to probe off Linux), or None to skip probing."""
    checks = {
        "system": _system,
        "opencv": _opencv,
        "cameras": (lambda: _cameras(*cameras)) if cameras else (lambda: ({"probed": False}, [])),
        "onnxruntime": _onnxruntime,
        "tensorrt": _tensorrt,
        "gpu": _gpu,
        "torch": _torch,
        "models": _models,
    }
    sections: dict[str, Any] = {}
    rows: list[dict[str, str]] = []
    for name, check in checks.items():
        try:
            data, section_rows = check()
        except Exception as err:  # a doctor must report, not crash
            log.debug("doctor: %s check failed", name, exc_info=True)
            data, section_rows = {"error": f"{type(err).__name__}: {err}"}, [(name, "fail", str(err))]
        sections[name] = data
        rows += [{"section": name, "item": i, "status": s, "detail": d} for i, s, d in section_rows]
    return {"sections": sections, "rows": rows, "summary": _summary(sections)}


# ----------------------------------------------------------------------------------------- checks


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _system() -> tuple[dict[str, Any], list[Row]]:
    import numpy

    from .. import __version__

    data: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "lsa_edge": __version__,
        "numpy": numpy.__version__,
    }
    rows: list[Row] = [
        ("Python", "ok", f"{data['python']} ({sys.executable})"),
        ("platform", "info", data["platform"]),
        ("lsa-edge", "ok", __version__),
        ("numpy", "ok", numpy.__version__),
    ]
    for key, path in (("jetson", "/proc/device-tree/model"), ("l4t", "/etc/nv_tegra_release")):
        try:
            text = Path(path).read_text(errors="replace").replace("\x00", "").strip().splitlines()[0]
        except (OSError, IndexError):
            continue
        data[key] = text
        rows.append(("Jetson model" if key == "jetson" else "L4T release", "info", text[:100]))
    return data, rows


def _opencv() -> tuple[dict[str, Any], list[Row]]:
    from .. import _opencv as ocv

    facts = ocv.inspect()
    if not facts["installed"]:
        rows: list[Row] = [("OpenCV", "no", f"not importable ({facts['error']})")]
        return facts, rows + [("OpenCV setup", s, text) for s, text in ocv.advice(facts, None)]
    from ..sources import video_backends

    cv2 = ocv.cv2
    b = video_backends()
    data = {**facts, **b, "threads": cv2.getNumThreads()}

    def yes(flag: bool, item: str, works: str, missing: str) -> Row:
        return (item, "ok" if flag else "no", works if flag else missing)

    where = f"PyPI wheel {facts['wheel']}" if facts["wheel"] else "system build (not from pip)"
    rows = [
        ("OpenCV", "ok", f"{b['opencv']}, {where} ({cv2.getNumThreads()} threads)"),
        ("cv2 module", "info", str(facts["file"])),
        yes(
            b["gstreamer"],
            "GStreamer",
            f"csi:// cameras available ({b['gstreamer_build']})",
            f"NO — no csi:// cameras; on a Jetson use JetPack's OpenCV ({ocv.JETSON_APT})",
        ),
        yes(b["ffmpeg"], "FFmpeg", "video files and rtsp/http streams", "NO — no streams, few video files"),
        yes(b["v4l2"], "V4L2", "USB cameras (v4l2:///dev/videoN)", "NO — cameras by index only"),
        (
            "CUDA",
            "ok" if b["cuda"] else "info",
            "OpenCV built with CUDA" if b["cuda"] else "not in OpenCV (not needed)",
        ),
        (
            "video I/O",
            "info",
            f"cameras: {', '.join(b['camera_backends']) or '-'}; "
            f"streams: {', '.join(b['stream_backends']) or '-'}",
        ),
    ]
    rows += [("OpenCV setup", s, text) for s, text in ocv.advice(facts, b["gstreamer"])]
    return data, rows


def _cameras(timeout: float, max_index: int) -> tuple[dict[str, Any], list[Row]]:
    from .._opencv import available
    from ..sources import probe_cameras

    if not available():
        return {"probed": False}, [("cameras", "no", "not probed: OpenCV is not importable (see above)")]

    found = probe_cameras(max_index=max_index, timeout=timeout)
    data = {"probed": True, "cameras": [c.to_dict() for c in found]}
    if not found:
        where = (
            "no /dev/video* devices" if sys.platform.startswith("linux") else f"indices 0..{max_index - 1}"
        )
        return data, [("cameras", "no", f"none found ({where})")]
    rows: list[Row] = []
    for c in found:
        if not c.opened:
            rows.append((c.uri, "no", f"{c.name + ': ' if c.name else ''}{c.error}"))
            continue
        size = f"{c.size[1]}×{c.size[0]}" if c.size else "size ?"
        fps = f" @ {c.fps:g} fps" if c.fps else ""
        frame = "" if c.frame is None else ("; delivers frames" if c.frame else "; opened but sent no frame")
        status = "ok" if c.frame is not False else "fail"
        rows.append((c.uri, status, f"{c.name + ': ' if c.name else ''}{size}{fps} via {c.backend}{frame}"))
    return data, rows


def _onnxruntime() -> tuple[dict[str, Any], list[Row]]:
    from .._lazy import available

    if not available("onnxruntime"):
        return {"installed": False}, [("ONNX Runtime", "no", "not installed: pip install 'lsa-edge[build]'")]
    try:
        import onnxruntime as ort
    except Exception as err:
        return {"installed": True, "error": str(err)}, [("ONNX Runtime", "fail", f"import failed: {err}")]
    providers = list(ort.get_available_providers())
    data = {"installed": True, "version": ort.__version__, "providers": providers, "device": ort.get_device()}
    gpu = [p for p in providers if p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")]
    return data, [
        ("ONNX Runtime", "ok", f"{ort.__version__} (device {ort.get_device()})"),
        ("providers", "ok" if gpu else "info", ", ".join(providers) + ("" if gpu else " — CPU only")),
    ]


def _tensorrt() -> tuple[dict[str, Any], list[Row]]:
    from .._lazy import available
    from ..backends._tensorrt_env import tensorrt_version

    v = tensorrt_version()
    # The TensorRT backend's CUDA: cuda-python preferred, pycuda the fallback (lsa_edge/backends/_cuda.py).
    bindings = {
        "cuda-python": (_version("cuda-python") or _version("cuda-bindings")) if available("cuda") else None,
        "pycuda": (_version("pycuda") or "installed") if available("pycuda") else None,
    }
    chosen = next((name for name, ver in bindings.items() if ver), None)
    if chosen:
        others = [f"{n} {ver}" for n, ver in bindings.items() if ver and n != chosen]
        detail = f"{chosen} {bindings[chosen]}" + (f" (also {', '.join(others)})" if others else "")
        rows: list[Row] = [("CUDA binding", "ok", detail)]
    else:
        rows = [
            (
                "CUDA binding",
                "no",
                "neither cuda-python nor pycuda: the TensorRT backend needs one "
                "(pip install 'cuda-python==12.6.*' on JetPack 6, '==11.8.*' on JetPack 5, '==13.*' on JetPack 7)",
            )
        ]
    data = {"version": v, "cuda_binding": chosen, "cuda_bindings": bindings}
    if v is None:
        return data, [
            ("TensorRT", "no", "not importable (Jetson: ships with JetPack); lsa-edge build writes bundles"),
            *rows,
        ]
    return data, [("TensorRT", "ok", v), *rows]


def _gpu() -> tuple[dict[str, Any], list[Row]]:
    from ..backends._cuda import driver_problem
    from ..backends._tensorrt_env import gpu_info
    from ..errors import GpuUnavailableError, LsaEdgeError

    no_driver = driver_problem()
    if no_driver:  # say it plainly before any binding's error code
        return {"name": None, "driver": False, "error": no_driver}, [("GPU", "no", f"no GPU: {no_driver}")]
    try:
        name, cc = gpu_info()
    except GpuUnavailableError as err:  # no device, or a driver older than the binding: a finding
        return {"name": None, "driver": True, "error": str(err)}, [("GPU", "no", str(err))]
    except LsaEdgeError as err:  # no CUDA binding to ask with
        return {"name": None, "driver": True, "error": str(err)}, [
            ("GPU", "info", "a driver is present; " + _first_sentence(str(err)))
        ]
    return {"name": name, "driver": True, "compute_capability": cc}, [
        ("GPU", "ok", f"{name} (compute capability {cc})")
    ]


def _torch() -> tuple[dict[str, Any], list[Row]]:
    from .._lazy import available

    if not available("torch"):  # never import what is not installed
        return {"installed": False}, [("PyTorch", "no", "not installed (only training needs it)")]
    try:
        import torch
    except Exception as err:
        return {"installed": True, "error": str(err)}, [("PyTorch", "fail", f"import failed: {err}")]
    cuda = bool(torch.cuda.is_available())
    data: dict[str, Any] = {"installed": True, "version": torch.__version__, "cuda_available": cuda}
    data["cuda_version"] = torch.version.cuda
    rows: list[Row] = [("PyTorch", "ok", torch.__version__)]
    if cuda:
        data["device"] = torch.cuda.get_device_name(0)
        rows.append(("CUDA (torch)", "ok", f"{data['device']}, CUDA {torch.version.cuda}"))
    else:
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
        rows.append(("CUDA (torch)", "no", f"not available ({built})"))
    return data, rows


def _models() -> tuple[dict[str, Any], list[Row]]:
    from .. import models
    from ..errors import LsaEdgeError, PackageError

    data: dict[str, Any] = {"detectors": {}, "default_model": None}
    rows: list[Row] = []
    for variant in models.DETECTORS:
        try:
            path = models.detector_path(variant)
        except LsaEdgeError as err:
            data["detectors"][variant] = None
            rows.append((f"detector ({variant})", "fail", str(err)))
            continue
        data["detectors"][variant] = str(path)
        rows.append((f"detector ({variant})", "ok", f"{path.name}, {path.stat().st_size / 1e6:.1f} MB"))
    from ..package import DEFAULT_MODEL_DIR, ModelPackage

    try:
        pkg = ModelPackage.open(None)
    except LsaEdgeError as err:  # not installed: info; installed but damaged (PackageError): a failure
        damaged = isinstance(err, PackageError)  # the whole message: which file, the hashes, how to restore
        rows.append(
            (
                "default model",
                "fail" if damaged else "info",
                str(err) if damaged else _first_sentence(str(err)),
            )
        )
        return data, rows
    data["default_model"] = str(DEFAULT_MODEL_DIR)
    test = pkg.card.training.get("test", {})
    acc = (
        f", CelebA-10k test {100 * test['mean_accuracy_tuned']:.2f}%" if "mean_accuracy_tuned" in test else ""
    )
    rows.append(("default model", "ok", f"{pkg.card.name} ({pkg.precision}{acc})"))
    return data, rows


def _first_sentence(text: str) -> str:
    head = text.split("; ")[0].split(". ")[0]
    return head if len(head) <= 160 else head[:157] + "..."


def _summary(s: dict[str, Any]) -> list[str]:
    """What runs here, in a few lines."""
    out: list[str] = []
    cv = s.get("opencv", {})
    kinds = ["files", "images"]
    if cv.get("v4l2"):
        kinds.append("USB cameras")
    if cv.get("ffmpeg"):
        kinds.append("rtsp/http streams")
    if cv.get("gstreamer"):
        kinds.append("CSI cameras")
    out.append("sources: " + ", ".join(kinds))
    backends = []
    if s.get("tensorrt", {}).get("version") and s.get("gpu", {}).get("name"):
        backends.append("TensorRT engines")
    providers = s.get("onnxruntime", {}).get("providers") or []
    for p, label in (
        ("TensorrtExecutionProvider", "ONNX Runtime TensorRT"),
        ("CUDAExecutionProvider", "ONNX Runtime CUDA"),
        ("CPUExecutionProvider", "ONNX Runtime CPU"),
    ):
        if p in providers:
            backends.append(label)
    if s.get("torch", {}).get("installed"):
        backends.append("PyTorch CUDA" if s["torch"].get("cuda_available") else "PyTorch CPU")
    out.append("inference: " + (", ".join(backends) or "none — install 'lsa-edge[build]' for ONNX Runtime"))
    cams = s.get("cameras", {}).get("cameras")
    if cams is not None:
        n = sum(1 for c in cams if c.get("opened"))
        out.append(f"cameras: {n} found" if n else "cameras: none found")
    return out


# ---------------------------------------------------------------------------------------- printing


def print_report(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ._common import console

    tab = Table(title="lsa-edge doctor")
    for col in ("section", "item", "status", "detail"):
        tab.add_column(col, no_wrap=col != "detail", overflow="fold", ratio=1 if col == "detail" else None)
    last = None
    for r in report["rows"]:
        section = r["section"] if r["section"] != last else ""
        last = r["section"]
        style = _STYLE.get(r["status"], "")
        tab.add_row(section, escape(r["item"]), f"[{style}]{r['status']}[/]", escape(r["detail"]))
    c = console()
    c.print(tab)
    for line in report["summary"]:
        c.print(escape(line))
