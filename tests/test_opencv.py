"""Which OpenCV the runtime uses: the stand-in where cv2 is missing, install hints per platform, a pip wheel
told from a system (JetPack) build, a wheel hiding JetPack's OpenCV, and how ``lsa-edge doctor`` reports
it. No Jetson here: its files, build information and platform are faked."""

from __future__ import annotations

import platform
from pathlib import Path
from types import SimpleNamespace

import pytest

import lsa_edge._opencv as ocv
from lsa_edge.cli import doctor
from lsa_edge.errors import MissingDependencyError
from lsa_edge.sources import cameras

# What getBuildInformation() says on JetPack 5 (OpenCV 4.5.4, built with GStreamer) and in PyPI's wheel.
JETPACK_BUILD = """
General configuration for OpenCV 4.5.4 =====================================
  Video I/O:
    FFMPEG:                      YES
    GStreamer:                   YES (1.16.3)
    v4l/v4l2:                    YES (linux/videodev2.h)
  NVIDIA CUDA:                   NO
"""
WHEEL_BUILD = JETPACK_BUILD.replace(
    "GStreamer:                   YES (1.16.3)", "GStreamer:                   NO"
)


def test_install_hint_per_platform():
    jetson = ocv.install_hint("aarch64", jetson=True)
    assert "nvidia-opencv" in jetson and "--system-site-packages" in jetson and "GStreamer" in jetson
    arm = ocv.install_hint("aarch64", jetson=False)
    assert "python3-opencv" in arm and "pip install 'lsa-edge[opencv]'" in arm
    assert ocv.install_hint("x86_64", jetson=False).startswith(
        "Install it with: pip install 'lsa-edge[opencv]'"
    )


def test_stand_in_names_the_fix():
    stand_in = ocv._MissingOpenCV(ImportError("No module named 'cv2'"))
    with pytest.raises(MissingDependencyError, match="No module named 'cv2'") as err:
        stand_in.resize  # noqa: B018
    assert ocv.install_hint() in str(err.value)
    with pytest.raises(AttributeError):  # introspection sees no OpenCV, and no error
        stand_in.__wrapped__  # noqa: B018
    assert not hasattr(stand_in, "__version__")
    numpy_abi = ocv.missing_message(ImportError("numpy.core.multiarray failed to import"))
    assert "pip install 'numpy<2'" in numpy_abi


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    """A venv's site-packages with PyPI's cv2 and a system dist-packages with JetPack's."""
    site, system = tmp_path / "venv" / "site-packages", tmp_path / "usr" / "dist-packages"
    for d in (site, system):
        (d / "cv2").mkdir(parents=True)
        (d / "cv2" / "__init__.py").write_text("")
    return site, system


def _fake(monkeypatch, tmp_path, in_use: str | None, wheels: dict, jetson: bool) -> tuple[dict, Path, Path]:
    """``in_use``: "site" (the venv's cv2), "system" (JetPack's) or None (cv2 not importable); ``wheels``:
    PyPI distributions installed (name → version), all writing the venv's cv2. Returns inspect()'s facts."""
    site, system = _tree(tmp_path)
    folder = {"site": site, "system": system}.get(in_use or "")
    module = (
        SimpleNamespace(__version__="4.5.4", __file__=str(folder / "cv2" / "__init__.py"))
        if folder
        else ocv._MissingOpenCV(ImportError("No module named 'cv2'"))
    )
    monkeypatch.setattr(ocv, "cv2", module)
    monkeypatch.setattr(ocv, "pip_wheels", lambda: {n: (v, site / "cv2") for n, v in wheels.items()})
    monkeypatch.setattr(ocv, "on_jetson", lambda: jetson)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    return ocv.inspect(search=[str(site), str(system)]), site, system


def test_a_pip_wheel_hiding_jetpacks_opencv(monkeypatch, tmp_path):
    facts, site, system = _fake(monkeypatch, tmp_path, "site", {"opencv-python-headless": "4.10.0.84"}, True)
    assert facts["origin"] == "pip wheel" and facts["wheel"] == "opencv-python-headless 4.10.0.84"
    assert facts["file"] == str(site / "cv2" / "__init__.py")
    assert facts["others"] == [{"path": str(system / "cv2"), "pip": False}]
    ((status, text),) = ocv.advice(facts, gstreamer=False)
    assert status == "fail" and f"hides the system OpenCV at {system / 'cv2'}" in text
    assert "pip uninstall opencv-python-headless" in text


def test_jetpacks_opencv_in_use(monkeypatch, tmp_path):
    facts, site, _ = _fake(monkeypatch, tmp_path, "system", {}, jetson=True)
    assert facts["origin"] == "system build" and facts["wheel"] is None and facts["version"] == "4.5.4"
    assert facts["others"] == [{"path": str(site / "cv2"), "pip": False}]  # another cv2, not in use
    assert ocv.advice(facts, gstreamer=True) == []
    ((status, text),) = ocv.advice(facts, gstreamer=False)  # a system build without GStreamer
    assert status == "fail" and "no csi:// cameras" in text and "nvidia-opencv" in text


def test_wheel_without_gstreamer_on_a_jetson_and_two_wheels(monkeypatch, tmp_path):
    wheels = {"opencv-python": "4.10.0.84", "opencv-python-headless": "4.10.0.84"}
    facts, _, _ = _fake(monkeypatch, tmp_path, "site", wheels, jetson=True)
    facts["others"] = []  # no JetPack OpenCV on this board
    findings = ocv.advice(facts, gstreamer=False)
    two = "several OpenCV wheels share one cv2 folder (opencv-python, opencv-python-headless)"
    assert any(s == "no" and t.startswith(two) for s, t in findings)
    assert any(s == "fail" and "has no GStreamer" in t and "nvidia-opencv" in t for s, t in findings)
    facts["jetson"], facts["machine"] = False, "x86_64"  # the same wheels on a desktop: only the clash
    assert [s for s, _ in ocv.advice(facts, gstreamer=False)] == ["no"]


def test_missing_opencv_with_a_system_copy_the_venv_does_not_see(monkeypatch, tmp_path):
    facts, _, _ = _fake(monkeypatch, tmp_path, None, {}, jetson=True)
    assert not facts["installed"] and "No module named" in facts["error"]
    ((status, text),) = ocv.advice(facts, None)
    assert status == "no" and "--system-site-packages" in text and str(tmp_path) in text
    facts["others"] = []
    ((_, text),) = ocv.advice(facts, None)
    assert "nvidia-opencv" in text


def test_this_machines_opencv_is_found():
    facts = ocv.inspect()
    import cv2

    assert facts["installed"] and facts["version"] == cv2.__version__ and facts["file"] == cv2.__file__
    if facts["origin"] == "pip wheel":  # CI: PyPI's wheel in a fresh venv
        assert facts["wheel"].split()[0] in ocv.PIP_DISTRIBUTIONS


# ------------------------------------------------------------------------------------------ doctor


@pytest.fixture
def build_info(monkeypatch):
    """Set what cv2.getBuildInformation() returns (video_backends is cached: cleared around each use)."""
    import cv2

    def set_info(text: str) -> None:
        monkeypatch.setattr(cv2, "getBuildInformation", lambda: text)
        cameras.video_backends.cache_clear()

    yield set_info
    cameras.video_backends.cache_clear()


def test_doctor_on_a_jetson_with_a_hiding_wheel(monkeypatch, build_info, tmp_path):
    import cv2

    build_info(WHEEL_BUILD)
    system = tmp_path / "dist-packages" / "cv2"
    system.mkdir(parents=True)
    (system / "__init__.py").write_text("")
    wheel = ("opencv-python-headless", "4.10.0.84")
    monkeypatch.setattr(ocv, "pip_wheels", lambda: {wheel[0]: (wheel[1], Path(cv2.__file__).parent)})
    monkeypatch.setattr(ocv, "installs", lambda search=None: [Path(cv2.__file__).parent, system])
    monkeypatch.setattr(ocv, "on_jetson", lambda: True)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    data, rows = doctor._opencv()
    by_item = {item: (status, detail) for item, status, detail in rows}
    assert by_item["OpenCV"][0] == "ok" and f"PyPI wheel {' '.join(wheel)}" in by_item["OpenCV"][1]
    assert by_item["cv2 module"] == ("info", cv2.__file__)
    assert by_item["GStreamer"][0] == "no" and "nvidia-opencv" in by_item["GStreamer"][1]
    status, detail = by_item["OpenCV setup"]
    assert status == "fail" and f"hides the system OpenCV at {system}" in detail
    assert data["origin"] == "pip wheel" and data["gstreamer"] is False and data["jetson"] is True


def test_doctor_with_jetpacks_opencv(monkeypatch, build_info):
    import cv2

    build_info(JETPACK_BUILD)
    monkeypatch.setattr(ocv, "pip_wheels", lambda: {})  # nothing from pip: a system build
    monkeypatch.setattr(ocv, "installs", lambda search=None: [Path(cv2.__file__).parent])
    monkeypatch.setattr(ocv, "on_jetson", lambda: True)
    data, rows = doctor._opencv()
    by_item = {item: (status, detail) for item, status, detail in rows}
    assert "system build (not from pip)" in by_item["OpenCV"][1]
    assert by_item["GStreamer"] == ("ok", "csi:// cameras available (YES (1.16.3))")
    assert "OpenCV setup" not in by_item  # nothing to fix
    assert "CSI cameras" in doctor._summary({"opencv": data})[0]


def test_doctor_without_opencv(monkeypatch):
    monkeypatch.setattr(ocv, "cv2", ocv._MissingOpenCV(ImportError("No module named 'cv2'")))
    monkeypatch.setattr(ocv, "installs", lambda search=None: [])
    monkeypatch.setattr(ocv, "on_jetson", lambda: False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    data, rows = doctor._opencv()
    assert data["installed"] is False
    assert rows[0] == ("OpenCV", "no", "not importable (No module named 'cv2')")
    assert rows[1][0] == "OpenCV setup" and "pip install 'lsa-edge[opencv]'" in rows[1][2]
    assert doctor._cameras(0.1, 1)[1][0][2].startswith("not probed: OpenCV is not importable")
