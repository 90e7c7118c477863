"""OpenCV, bound once for the core (``from ._opencv import cv2``), and where it came from.

lsa-edge depends on PyPI's ``opencv-python-headless`` except on aarch64: on a Jetson, JetPack's OpenCV is
built with GStreamer (``csi://`` cameras need it), and a pip wheel installed over it would hide it. Where
no OpenCV can be imported, ``cv2`` here is a stand-in whose every attribute raises
:class:`MissingDependencyError` saying what to install, so ``import lsa_edge`` and ``lsa-edge --help``
still work and the first use of OpenCV names the fix. :func:`inspect` and :func:`advice` tell a pip wheel
from a system (JetPack, Debian, source) build and find a system OpenCV that a wheel hides, for
``lsa-edge doctor``.

Imports the standard library only (and cv2 where it is installed).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

from . import _signals
from .errors import MissingDependencyError

# PyPI's OpenCV distributions; each installs the same top-level ``cv2`` package.
PIP_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
JETSON_APT = "sudo apt install nvidia-opencv"  # JetPack 5/6: OpenCV with GStreamer and its Python module


def on_jetson() -> bool:
    """True on NVIDIA's L4T (JetPack)."""
    if Path("/etc/nv_tegra_release").exists():
        return True
    try:
        return "jetson" in Path("/proc/device-tree/model").read_text(errors="replace").lower()
    except OSError:
        return False


def install_hint(machine: str | None = None, jetson: bool | None = None) -> str:
    """What to install for OpenCV on this machine (``machine``/``jetson``: overrides, for tests)."""
    machine = (machine if machine is not None else platform.machine()).lower()
    jetson = on_jetson() if jetson is None else jetson
    venv = "make the virtual environment with --system-site-packages so that it sees it"
    if jetson:
        return (
            f"On a Jetson use JetPack's OpenCV, built with GStreamer for csi:// cameras: {JETSON_APT} "
            f"(or python3-opencv), and {venv}. Do not pip install opencv-python*: a wheel hides JetPack's build."
        )
    if machine in ("aarch64", "arm64"):
        return (
            "On aarch64 lsa-edge does not install PyPI's OpenCV (on a Jetson it would hide JetPack's): "
            f"sudo apt install python3-opencv and {venv}, or pip install 'lsa-edge[opencv]'."
        )
    return "Install it with: pip install 'lsa-edge[opencv]' (PyPI's opencv-python-headless)."


def missing_message(err: BaseException) -> str:
    msg = f"OpenCV (cv2) is needed but could not be imported ({err})."
    if "numpy" in str(err).lower() or "_ARRAY_API" in str(err):
        msg += " This OpenCV was built against numpy 1.x (JetPack's is): pip install 'numpy<2'."
    return f"{msg} {install_hint()}"


class _MissingOpenCV:
    """Stands in for cv2 where it cannot be imported: using it raises MissingDependencyError."""

    def __init__(self, err: ImportError) -> None:
        self._err = err

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # introspection (copy, pickle, inspect) must not look like OpenCV
            raise AttributeError(name)
        raise MissingDependencyError(missing_message(self._err))

    def __repr__(self) -> str:
        return f"<cv2 stand-in: {self._err}>"


try:
    # Ctrl-C / SIGTERM while numpy's C API initialised inside cv2 is the interruption, not a missing OpenCV
    with _signals.reraise_as_interruption(ImportError):
        import cv2
except ImportError as _err:  # not installed, or built against another numpy
    cv2 = _MissingOpenCV(_err)  # type: ignore[assignment]  # a stand-in naming the fix


def available() -> bool:
    return not isinstance(cv2, _MissingOpenCV)


# ------------------------------------------------------------------------------------ provenance


def pip_wheels() -> dict[str, tuple[str, Path]]:
    """PyPI OpenCV distributions installed for this Python: name → (version, the ``cv2`` folder they write)."""
    from importlib.metadata import distributions

    out = {}
    for dist in distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in PIP_DISTRIBUTIONS:
            out[name] = (dist.version, Path(str(dist.locate_file("cv2"))))
    return out


def _system_dirs() -> list[str]:
    """Where Debian, JetPack and OpenCV built from source put Python modules; a virtual environment made
    without --system-site-packages does not look there."""
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    return [
        "/usr/lib/python3/dist-packages",
        f"/usr/lib/{v}/dist-packages",
        f"/usr/local/lib/{v}/dist-packages",
        f"/usr/local/lib/{v}/site-packages",
    ]


def installs(search: list[str] | None = None) -> list[Path]:
    """Every ``cv2`` on ``search`` (default: sys.path, then the system's folders): a ``cv2`` package folder
    or a single ``cv2*.so`` (older builds), in search order, each once."""
    found: list[Path] = []
    for d in dict.fromkeys(search if search is not None else [*sys.path, *_system_dirs()]):
        base = Path(d or ".")
        hits = [base / "cv2"] if (base / "cv2" / "__init__.py").is_file() else sorted(base.glob("cv2*.so"))
        for hit in hits:
            if hit.resolve() not in {f.resolve() for f in found}:
                found.append(hit)
    return found


def _location(module_file: str | None) -> Path | None:
    """The ``cv2`` folder (or single file) behind ``cv2.__file__``."""
    if not module_file:
        return None
    p = Path(module_file)
    return p.parent if p.name.startswith("__init__.") else p


def inspect(search: list[str] | None = None) -> dict[str, Any]:
    """Facts about the OpenCV in use: ``installed``, ``version``, ``file``, ``origin`` ("pip wheel" or
    "system build"), ``wheel`` ("name version" of the PyPI distribution that provides it), ``wheels``
    (every PyPI OpenCV installed), ``others`` (other cv2 installs, e.g. JetPack's that a wheel hides or that
    this environment does not see), ``machine``, ``jetson``, and ``error`` when it cannot be imported."""
    wheels = pip_wheels()
    facts: dict[str, Any] = {
        "installed": available(),
        "machine": platform.machine(),
        "jetson": on_jetson(),
        "wheels": {n: v for n, (v, _) in wheels.items()},
    }
    here = None
    if available():
        here = _location(getattr(cv2, "__file__", None))
        owner = [n for n, (_, folder) in wheels.items() if here and folder.resolve() == here.resolve()]
        facts.update(
            version=cv2.__version__,
            file=getattr(cv2, "__file__", None),
            origin="pip wheel" if owner else "system build",
            wheel=f"{owner[0]} {wheels[owner[0]][0]}" if owner else None,
        )
    else:
        facts["error"] = str(cv2._err)  # type: ignore[attr-defined]  # the _MissingOpenCV stand-in
    pip_folders = {folder.resolve() for _, folder in wheels.values()}
    facts["others"] = [
        {"path": str(p), "pip": p.resolve() in pip_folders}
        for p in installs(search)
        if here is None or p.resolve() != here.resolve()
    ]
    return facts


def advice(facts: dict[str, Any], gstreamer: bool | None) -> list[tuple[str, str]]:
    """(status, text) findings about the OpenCV setup: "fail" where csi:// cannot work on a Jetson because
    of it, "no" for a missing or doubtful piece. ``facts`` from :func:`inspect`; ``gstreamer`` from
    ``cv2.getBuildInformation()`` (None: unknown)."""
    out: list[tuple[str, str]] = []
    jetson = facts.get("jetson", False)
    arm = str(facts.get("machine", "")).lower() in ("aarch64", "arm64")
    system = [o["path"] for o in facts.get("others", []) if not o["pip"]]
    if not facts.get("installed"):
        if system:
            out.append(
                (
                    "no",
                    f"an OpenCV is installed at {system[0]} but this Python does not see it: make the virtual "
                    "environment with --system-site-packages (python3 -m venv --system-site-packages .venv)",
                )
            )
        else:
            out.append(("no", install_hint(facts.get("machine"), jetson)))
        return out
    wheel = facts.get("wheel")
    if len(facts.get("wheels", {})) > 1:
        names = ", ".join(sorted(facts["wheels"]))
        out.append(("no", f"several OpenCV wheels share one cv2 folder ({names}): pip uninstall all but one"))
    if wheel and (jetson or arm) and system:
        name = wheel.split()[0]
        whose = " (JetPack's, with GStreamer for csi://)" if jetson else ""
        out.append(
            (
                "fail" if jetson else "no",
                f"PyPI's {wheel} hides the system OpenCV at {system[0]}{whose}: pip uninstall {name}",
            )
        )
    elif wheel and jetson and not gstreamer:
        name = wheel.split()[0]
        out.append(
            (
                "fail",
                f"PyPI's {wheel} has no GStreamer, so no csi:// cameras: pip uninstall {name}, then "
                f"{JETSON_APT} (virtual environment with --system-site-packages)",
            )
        )
    elif jetson and gstreamer is False:
        out.append(
            ("fail", f"this OpenCV has no GStreamer, so no csi:// cameras: JetPack's has it ({JETSON_APT})")
        )
    return out
