"""Reading a build folder's ``manifest.json`` as untrusted input, and checking the files it names.

Everything the loader uses is validated here, so a damaged, hand-edited or foreign manifest is a
:class:`PackageError` naming the file, the key and what to do — never a KeyError from deep inside. Keys
the loader does not use are left alone (manifests of every earlier lsa-edge load). A name in a manifest
must stay inside the package folder: absolute paths, drive letters and ``..`` are refused, so a manifest
cannot make lsa-edge read (or hash) a file elsewhere. Symlinks the user placed in the folder are followed.

Imports the standard library, :mod:`._verify` and :mod:`.card` only.
"""

from __future__ import annotations

import json
import logging
import re
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Callable, Dict, Tuple, Union

from . import _verify
from .errors import ConfigError, PackageError

__all__ = [
    "GENERATIONS",
    "MANIFEST",
    "MANIFEST_FORMAT",
    "PRECISIONS",
    "check_build_keys",
    "check_document",
    "check_files",
    "member",
    "missing_file",
    "read_manifest",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1  # the newest format this loader reads; lsa_edge.engines.build writes it
PRECISIONS = ("fp32", "fp16", "int8")  # the one definition (engine_meta and engines.build import it)
GENERATIONS = ("8.5", "10", "11")  # the TensorRT generations a bundle carries graphs and commands for
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is ~11 kB; anything this big is not one (and is not read whole)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIX = "rebuild the package with lsa-edge build, or copy it again from where it was built"


def _type(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _short(v: Any, limit: int = 60) -> str:
    """A value as the message shows it: repr, cut to ``limit`` characters."""
    return _clip(repr(v), limit)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Invalid:
    """Collects what is wrong with one manifest, then raises once with all of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.problems.append(f"{where} {what}")

    def raise_if_any(self) -> None:
        if self.problems:
            shown = "; ".join(self.problems[:5])
            more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            raise PackageError(f"{self.path} is not a valid lsa-edge manifest: {shown}{more}. {_cap(_FIX)}")


def read_manifest(root: Path, name: str = MANIFEST, for_build: bool = False) -> dict[str, Any]:
    """The manifest of the build folder ``root``, with every key the loader uses checked — and with
    ``for_build`` every key ``lsa-edge build --from-bundle`` reads (:data:`BUILD_SCHEMA`).

    Returns the document as read (unknown keys kept). Raises PackageError naming ``root/manifest.json``.
    """
    doc = _read_checked(root / name)
    if for_build:
        check_build_keys(root / name, doc)
    return doc


def _read_checked(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise PackageError(
                f"{path} is {size:,} bytes: not a manifest (they are a few kB; at most {MAX_MANIFEST_BYTES:,}). "
                f"{_cap(_FIX)}"
            )
        raw = path.read_bytes()
    except OSError as err:  # no permission, a folder named manifest.json, an I/O error
        raise PackageError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise PackageError(
            f"{path} is not a manifest: not UTF-8 text ({err.reason} at byte {err.start}). {_cap(_FIX)}"
        ) from None
    except json.JSONDecodeError as err:
        raise PackageError(
            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); it may be truncated "
            f"or hand-edited. {_cap(_FIX)}"
        ) from None
    except (ValueError, RecursionError) as err:  # e.g. integers longer than Python allows, absurd nesting
        raise PackageError(f"{path} is not a usable manifest ({err}). {_cap(_FIX)}") from None
    if not isinstance(doc, dict):
        raise PackageError(
            f'{path} is not a manifest: it holds a JSON {_type(doc)}, not an object with "card" and '
            f'"files". {_cap(_FIX)}'
        )
    check_document(path, doc)
    return doc


def check_document(path: Path, doc: dict[str, Any]) -> None:
    """Every key the runtime loader uses, in ``doc`` (a manifest read from ``path``): PackageError naming
    the file, each wrong key and what to do."""
    bad = _Invalid(path)
    fmt = doc.get("format", 1)  # every manifest so far has it; a missing one is read as the first format
    if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt < 1:
        bad.add('"format"', f"must be a positive integer, got {_short(fmt)} ({_type(fmt)})")
    elif fmt > MANIFEST_FORMAT:
        raise PackageError(
            f"{path} is manifest format {_short(fmt)}; this lsa-edge reads up to {MANIFEST_FORMAT}. Upgrade lsa-edge "
            "(pip install -U lsa-edge), or rebuild the package with this version's lsa-edge build"
        )
    prec = doc.get("precision", "fp32")
    if prec not in PRECISIONS:
        bad.add('"precision"', f"must be one of {', '.join(PRECISIONS)}, got {_short(prec)}")
    if "card" not in doc:
        bad.add('"card"', "is missing (the model card: attributes, thresholds, preprocessing)")
    elif not isinstance(doc["card"], dict):
        bad.add('"card"', f"must be an object, got {_type(doc['card'])}")
    for key in ("onnx", "cpu_onnx", "engine"):
        _name(bad, f'"{key}"', doc.get(key))
    det = doc.get("detector")
    if det is not None and not isinstance(det, dict):
        bad.add('"detector"', f"must be an object or null, got {_type(det)}")
    elif det is not None:
        for key in ("onnx", "engine"):
            _name(bad, f'"detector"."{key}"', det.get(key))
    files = doc.get("files")
    if files is not None and not isinstance(files, dict):
        bad.add('"files"', f"must be an object of file name → {{bytes, sha256}}, got {_type(files)}")
    elif files:
        for fname, entry in files.items():
            where = f'"files".{_short(fname)}'
            if fname == "":
                bad.add('"files"', "has an entry with an empty file name")
            _name(bad, f'"files" key {_short(fname)}', fname)
            if not isinstance(entry, dict):
                bad.add(where, f"must be an object with bytes and sha256, got {_type(entry)}")
                continue
            size, digest = entry.get("bytes"), entry.get("sha256")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                bad.add(f"{where}.bytes", f"must be a size in bytes (an integer ≥ 0), got {_short(size)}")
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                bad.add(f"{where}.sha256", f"must be 64 lowercase hex digits, got {_short(digest)}")
    bad.raise_if_any()


# -- what building engines reads ---------------------------------------------------------------------------
# A check takes a value and returns "" when it is fine, else what the value must be. A spec is a check or
# an object's fields: {key: (spec, required)}. One table, read by check_build_keys; the functions of
# lsa_edge.engines.build that read a bundle's manifest read nothing it does not cover.
Check = Callable[[Any], str]
Spec = Union[Check, Dict[str, Tuple[Any, bool]]]


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _integer(lo: int) -> Check:
    return lambda v: "" if _int(v) and v >= lo else f"must be an integer ≥ {lo}"


def _optional(spec: Spec) -> Spec:
    return lambda v: "" if v is None else _problem(spec, v)


def _one_of(choices: tuple[str, ...]) -> Check:
    return lambda v: "" if isinstance(v, str) and v in choices else f"must be one of {', '.join(choices)}"


def _text(v: Any) -> str:
    return "" if isinstance(v, str) and v else "must be a non-empty string"


def _boolean(v: Any) -> str:
    return "" if isinstance(v, bool) else "must be true or false"


def _file(v: Any) -> str:
    if not isinstance(v, str) or not v:
        return "must be a file name"
    why = unsafe(v)
    return f"names {_short(v)}: {why}" if why else ""


def _profile(v: Any) -> str:
    ok = isinstance(v, list) and len(v) == 3 and all(_int(b) for b in v) and 1 <= v[0] <= v[1] <= v[2]
    return "" if ok else "must be [min, opt, max] batch sizes with 1 ≤ min ≤ opt ≤ max"


def _shape(v: Any) -> str:  # [batch, C, H, W] (or NHWC): the batch a name or a number, the rest numbers
    ok = isinstance(v, list) and len(v) == 4 and all(_int(d) and d >= 1 for d in v[1:])
    return "" if ok else "must be a 4-dimensional shape [batch, ·, ·, ·] with positive sizes after batch"


def _texts(v: Any) -> str:
    return "" if isinstance(v, list) and all(isinstance(t, str) for t in v) else "must be a list of strings"


def _mapping(value_spec: Spec) -> Check:
    """An object of any keys, each value matching ``value_spec``."""

    def check(v: Any) -> str:
        if not isinstance(v, dict):
            return "must be an object"
        bad = [f"{_short(k)} {p}" for k, x in v.items() for p in [_problem(value_spec, x)] if p]
        return f"has entries that are wrong: {'; '.join(bad[:3])}" if bad else ""

    return check


def _per_generation(value_spec: Spec, every: bool = True) -> Check:
    """An object with a value for each TensorRT generation (``every``; else for those present)."""
    keyed = _mapping(value_spec)

    def check(v: Any) -> str:
        problem = keyed(v)
        if problem:
            return problem
        lacking = [g for g in GENERATIONS if every and g not in v]
        return f"lacks TensorRT {', '.join(lacking)}" if lacking else ""

    return check


def _compatible(v: Any) -> str:  # tensorrt_compatibility[gen]: {"ok": bool, "errors": [why, ...]}
    problem = _problem({"ok": (_boolean, True), "errors": (_texts, True)}, v)
    if not problem and v["ok"] is False and not v["errors"]:
        problem = 'has "ok": false and no "errors" saying why'
    return problem


_INPUT: Spec = {"name": (_text, True), "shape": (_shape, True)}
_DETECTOR: Spec = {
    "onnx_by_tensorrt": (_per_generation(_file), True),
    "strongly_typed_by_tensorrt": (_per_generation(_boolean, every=False), False),
    "precision": (_one_of(PRECISIONS), True),
    "batch": (_optional(_profile), True),  # null: the detector's ONNX has a fixed batch
    "input": (_INPUT, True),
}


def _real(v: Any) -> str:
    return "" if _number(v) else "must be a number"


def _list_of(item: Spec) -> Check:
    def check(v: Any) -> str:
        if not isinstance(v, list):
            return "must be a list"
        bad = [p for p in (_problem(item, x) for x in v) if p]
        return f"has an item that {bad[0]}" if bad else ""

    return check


_CHECK_REPORT: Spec = {  # one accuracy check (engines.accuracy.AccuracyCheck), as the build summary shows it
    "artifact": (_text, True),
    "decision_agreement": (_real, True),
    "delta_points": (_real, True),
    "reference_accuracy": (_real, True),
    "faces": (_integer(0), True),
    "worst": (_list_of({"attribute": (_text, True), "delta_points": (_real, True)}), True),
}
BUILD_SCHEMA: dict[str, tuple[Spec, bool]] = {
    "precision": (_one_of(PRECISIONS), True),
    "onnx_by_tensorrt": (_per_generation(_file), True),
    "strongly_typed_by_tensorrt": (_per_generation(_boolean, every=False), False),
    "input": (_INPUT, True),
    "batch": (_profile, True),
    "workspace_mib": (_integer(1), True),
    "dla_core": (_optional(_integer(0)), True),
    "detector": (_optional(_DETECTOR), False),
    "tensorrt_compatibility": (_per_generation(_compatible, every=False), False),
    "tensorrt_commands": (
        {
            "lsa_edge": (_text, True),
            "trtexec": (_per_generation(_texts, every=False), True),
            "not_buildable": (_per_generation(_text, every=False), False),
            "trtexec_implicit_int8_8.5": (_text, False),
        },
        False,
    ),
    "opset16": (_mapping(_file), False),
    "opset16_parity_max_abs_diff": (_mapping(_real), False),
    # What the summary after a build prints (lsa_edge.cli.build.print_summary).
    "source": (_text, True),
    "cpu_onnx": (_file, True),
    "parity_max_abs_diff": (_optional(_real), True),
    "tensorrt_target": (_one_of(GENERATIONS), True),
    "accuracy_delta": (_real, True),
    "max_accuracy_drop": (_real, True),
    "accuracy": (_mapping(_CHECK_REPORT), False),
    "validation": ({"labelled": (_boolean, False)}, False),
}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _problem(spec: Spec, value: Any) -> str:
    """What is wrong with ``value`` against ``spec`` ("" when nothing)."""
    if callable(spec):
        return spec(value)
    if not isinstance(value, dict):
        return f"must be an object, got {_type(value)}"
    for key, (sub, required) in spec.items():
        if key not in value:
            if required:
                return f'lacks "{key}"'
            continue
        problem = _problem(sub, value[key])
        if problem:
            return f'."{key}" {problem}' if not problem.startswith(".") else f'."{key}"{problem}'
    return ""


def check_build_keys(path: Path, doc: dict[str, Any]) -> None:
    """Every key building engines reads (:data:`BUILD_SCHEMA`), in ``doc`` read from ``path``: one
    PackageError naming the file, each wrong key and what to do — never a KeyError on the device."""
    bad = _Invalid(path)
    for key, (spec, required) in BUILD_SCHEMA.items():
        if key not in doc:
            if required:
                bad.add(f'"{key}"', "is missing (building engines needs it)")
            continue
        problem = _problem(spec, doc[key])
        if problem:
            bad.add(
                f'"{key}"' + (problem.split(" ", 1)[0] if problem.startswith(".") else ""),
                problem.split(" ", 1)[1] if problem.startswith(".") else problem,
            )
    bad.raise_if_any()


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _name(bad: _Invalid, where: str, name: Any) -> None:
    """A file name in a manifest: null/absent, or a relative path that stays inside the package."""
    if name is None:
        return
    if not isinstance(name, str):
        bad.add(where, f"must be a file name or null, got {_type(name)}")
        return
    problem = unsafe(name)
    if problem:
        bad.add(where, f"names {_short(name)}: {problem}; a manifest may name only files inside its folder")


def unsafe(name: str) -> str:
    """Why ``name`` (from a manifest) cannot name a file inside the package folder; "" when it can.

    Both POSIX and Windows readings are checked, so a manifest is equally safe wherever it is opened."""
    if name == "":
        return ""  # "no file" in manifests of every version (treated as absent)
    if "\x00" in name:
        return "a NUL character"
    for pure in (PurePosixPath(name), PureWindowsPath(name)):
        if pure.anchor or pure.is_absolute():
            return "an absolute path, outside the package"
        if ".." in pure.parts:
            return "'..' leads outside the package"
    if not PurePosixPath(name).parts or not PureWindowsPath(name).parts:
        return "the package folder itself, not a file"
    return ""


def member(root: Path, name: Any, what: str, must_exist: bool = True) -> Path | None:
    """``root / name`` for a name read by :func:`read_manifest` (None for none); PackageError when the
    manifest names a file that is not there (``must_exist``), is not a file, or cannot be looked at."""
    if not name:
        return None
    manifest = root / MANIFEST
    shown = _clip(name, 120) if isinstance(name, str) else _short(name)
    problem = unsafe(name) if isinstance(name, str) else f"not a file name ({_type(name)})"
    if problem:  # read_manifest refused it already; kept for callers with their own documents
        raise PackageError(
            f"{manifest}: {what} names {shown}: {problem}; a manifest may name only files inside its folder"
        )
    path = root / name
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: not encodable on this system
        if not must_exist:
            return None
        raise missing_file(root, name, what) from None
    except OSError as err:  # a name too long, a symlink loop, no permission
        raise PackageError(
            f"{manifest} names {shown} as {what}, which cannot be opened ({err.strerror or err}). {_cap(_FIX)}"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise PackageError(f"{manifest} names {shown} as {what}, but it is not a file. {_cap(_FIX)}")
    return path


def missing_file(root: Path, name: str, what: str) -> PackageError:
    """The error for a file the manifest names that is not there (raised where it would be opened)."""
    return PackageError(
        f"{root / MANIFEST} names {_clip(name, 120)} as {what}, but {_clip(str(root / name))} is missing: the "
        "package is incomplete. Copy the whole folder again, or rebuild it with lsa-edge build"
    )


def check_files(root: Path, manifest: dict[str, Any], missing_ok: bool = False) -> list[str]:
    """Every file in the manifest's ``files`` is present, of the recorded size and sha256.

    missing_ok: a listed file that is not there is returned (in the manifest's order) instead of failing
    — a package slimmed for one device; the caller fails when it opens one of them. A file that is there
    is always checked.

    Hashes are cached (see :mod:`._verify`): the second check of an unchanged package only stats files.
    ``LSA_EDGE_VERIFY=0`` skips the hash comparison, with a warning; sizes are still checked (a stat costs
    nothing, and a file of another size is never the one that was built, so it has no bypass)."""
    files = manifest.get("files")
    where = root / MANIFEST
    if not files:
        log.warning(
            "%s records no file checksums: its files cannot be verified (rebuild it to add them)", where
        )
        return []
    verify = _verify.verify_enabled()
    if not verify:
        log.warning(
            "%s=0: the files of %s are not checked against their sha256 (a damaged model may give wrong results)",
            _verify.VERIFY_ENV,
            root,
        )
    missing: list[str] = []
    for name, entry in files.items():
        path = member(root, name, "a package file", must_exist=not missing_ok)
        if path is None:  # names are non-empty (read_manifest checked them): absent, and missing_ok
            missing.append(name)
            continue
        try:
            st = path.stat()
        except OSError as err:
            raise PackageError(f"cannot read {path}: {err.strerror or err}") from None
        if st.st_size != entry["bytes"]:
            raise PackageError(
                f"{path} is {st.st_size:,} bytes but {where} records {entry['bytes']:,}: the file is "
                f"truncated or was replaced. {_cap(_FIX)}"  # no LSA_EDGE_VERIFY hint: it skips hashes only
            )
        if not verify:
            continue
        try:
            actual, cached = _verify.file_sha256(path, st)
            if actual != entry["sha256"] and cached:  # never fail on a cache's word alone
                actual, _ = _verify.file_sha256(path, st, fresh=True)
        except OSError as err:
            raise PackageError(f"cannot read {path}: {err.strerror or err}; check its permissions") from None
        if actual != entry["sha256"]:
            raise PackageError(
                f"{path} is damaged or was changed after the package was built: its sha256 is {actual}, "
                f"{where} records {entry['sha256']}. {_cap(_FIX)}{_bypass()}"
            )
    return missing


def _bypass() -> str:
    return f" (to run it anyway, at your own risk: {_verify.VERIFY_ENV}=0)"


def card_from(root: Path, doc: dict[str, Any]) -> Any:
    """The manifest's model card; PackageError naming the manifest when it is incomplete or malformed."""
    from .card import ModelCard

    try:
        return ModelCard.from_dict(doc["card"])
    except ConfigError as err:
        raise PackageError(f"{root / MANIFEST}: its model card is invalid: {err}. {_cap(_FIX)}") from None
    except KeyError as err:
        raise PackageError(f"{root / MANIFEST}: its model card lacks the key {err}. {_cap(_FIX)}") from None
    except (TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as err:
        raise PackageError(
            f"{root / MANIFEST}: its model card is malformed ({type(err).__name__}: {_short(str(err), 160)}). "
            f"{_cap(_FIX)}"
        ) from None
