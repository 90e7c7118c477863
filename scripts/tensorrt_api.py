"""NVIDIA's real TensorRT Python API, per generation, as test data — names, kinds and enum values only.

TensorRT's engine libraries cannot be installed off a GPU machine, but its Python *bindings* wheels
(``tensorrt-bindings`` / ``tensorrt-cu12-bindings``, ~1 MB each, the real pybind11 extension) import once
stub libraries export the few C entry points the extension resolves at load time. Every class, method,
property and enum member is then the real one (``Builder``/``Runtime`` cannot be created: the stubs return
NULL). This script

  fetch    downloads the wheels (pip download --no-deps), unpacks them and compiles the stubs (cc) into a
           cache folder, one folder per version: what the real-bindings tests run against;
  dump     imports each version in its own process and writes ``tests/data/tensorrt_api/<version>.json``;
  conformance  runs the TensorRT tests through the strict fake and tabulates the names used per version;
  sources  reads the 8.5 API (JetPack 5; no wheel exists) from NVIDIA's Apache-2.0 binding sources in a
           git clone of github.com/NVIDIA/TensorRT at tag 8.5.2 (names from python/src, enum values from
           include/NvInfer*.h), and measures that reader against the wheels of 8.6.1 and 10.3.0.

    python scripts/tensorrt_api.py fetch                      # → .cache/tensorrt-bindings/cpXY/<version>/
    python scripts/tensorrt_api.py dump                       # → tests/data/tensorrt_api/*.json
    python scripts/tensorrt_api.py sources --repo PATH/TO/TensorRT[.git]
    python scripts/tensorrt_api.py conformance                # which real names the code uses, per version

Only names, kinds and enum values are written: the wheels' licence does not allow shipping them. The JSON
is what ``tests/_fake_tensorrt.py`` builds its strict stand-in from and what the conformance tests check
lsa-edge's TensorRT code against.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# One folder per CPython: the extension is built for one (CI fetches for 3.11, then for its 3.8 stage).
CACHE = ROOT / ".cache" / "tensorrt-bindings" / f"cp{sys.version_info[0]}{sys.version_info[1]}"
DATA = ROOT / "tests" / "data" / "tensorrt_api"
FORMAT = 1

# version → (PyPI project, libnvinfer soname major). One per line of design.md §5, plus the release where
# weak typing became deprecated (10.12+, JetPack 7.0 on Thor ships 10.13).
WHEELS: dict[str, tuple[str, str]] = {
    "8.6.1": ("tensorrt-bindings", "8"),  # JetPack 6.0 DP; the nearest wheel to JetPack 5's 8.5
    "10.3.0": ("tensorrt-cu12-bindings", "10"),  # JetPack 6.x
    "10.13.3.9": ("tensorrt-cu12-bindings", "10"),  # JetPack 7.0 (Thor)
    "11.4.0.106": ("tensorrt-cu12-bindings", "11"),  # JetPack 7.2.2+
}
SOURCE_TAG = "8.5.2"  # JetPack 5.1.x ships TensorRT 8.5.2
# The C entry points the extension resolves when it is loaded (from `nm -D --undefined-only tensorrt.so`
# of each wheel). Each stub returns NULL/0, so creating a Builder/Runtime/OnnxParser fails cleanly.
_STUB_NVINFER = """
void *createInferBuilder_INTERNAL(void *logger, int version) { return 0; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { return 0; }
void *createInferRuntime_INTERNAL(void *logger, int version) { return 0; }
void *getBuilderPluginRegistry(int capability) { return 0; }
void *getPluginRegistry(void) { return 0; }
int initLibNvInferPlugins(void *logger, const char *ns) { return 0; }
"""
_STUB_ONNXPARSER = """
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { return 0; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { return 0; }
int getNvOnnxParserVersion(void) { return 0; }
"""
# 8.x also links the (removed in 10) Caffe/UFF parsers: a few C++ symbols, written as their mangled names.
_STUB_NVPARSERS = """
void *_ZN11nvuffparser15createUffParserEv(void) { return 0; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void *self, const char *n, const void *d, int t, int l) {}
void *_ZN14nvcaffeparser117createCaffeParserEv(void) { return 0; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) {}
"""


class ToolError(RuntimeError):
    """A step cannot run here (no compiler, no download); the message says which and why."""


# ------------------------------------------------------------------------------------------------ fetch


def version_dir(version: str, cache: Path = CACHE) -> Path:
    return cache / version


def is_prepared(version: str, cache: Path = CACHE) -> bool:
    return (version_dir(version, cache) / "READY").is_file()


def binding_env(version: str, cache: Path = CACHE, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment in which ``import tensorrt`` (and ``tensorrt_bindings``) loads the real extension of
    ``version`` with the stub libraries."""
    d = version_dir(version, cache)
    env = dict(os.environ if base is None else base)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(d / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
    paths = (str(d / "shim"), str(d / "site"), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def _compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise ToolError("no C compiler (cc/gcc/clang) on PATH: the stub libraries cannot be built")


def _build_stub(cc: str, source: str, out: Path) -> None:
    src = out.with_suffix(".c")
    src.write_text(source)
    soname = out.name
    cmd = [cc, "-shared", "-fPIC", "-o", str(out), f"-Wl,-soname,{soname}", str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    src.unlink()
    if res.returncode:
        raise ToolError(f"compiling {soname} failed: {res.stderr.strip()}")


def fetch(version: str, cache: Path = CACHE, quiet: bool = False) -> Path:
    """Download, unpack and stub ``version``; returns its folder (reused when already prepared)."""
    if version not in WHEELS:
        raise ToolError(f"unknown version {version!r}; known: {', '.join(WHEELS)}")
    d = version_dir(version, cache)
    if is_prepared(version, cache):
        return d
    cc = _compiler()
    project, major = WHEELS[version]
    if d.exists():
        shutil.rmtree(d)
    (d / "lib").mkdir(parents=True)
    wheels = d / "wheel"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(wheels),
        f"{project}=={version}",
    ]
    if quiet:
        cmd.append("-q")
    res = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob("*.whl"))
    if res.returncode or not found:
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ToolError(f"pip download {project}=={version} failed: {tail[0]}")
    with zipfile.ZipFile(found[0]) as z:
        z.extractall(d / "site")
    shutil.rmtree(wheels)
    lib = d / "lib"
    _build_stub(cc, _STUB_NVINFER, lib / f"libnvinfer.so.{major}")
    _build_stub(cc, _STUB_NVINFER, lib / f"libnvinfer_plugin.so.{major}")
    _build_stub(cc, _STUB_ONNXPARSER, lib / f"libnvonnxparser.so.{major}")
    if major == "8":
        _build_stub(cc, _STUB_NVPARSERS, lib / "libnvparsers.so.8")
    check = subprocess.run(
        [sys.executable, "-c", "import tensorrt_bindings as t; print(t.__version__)"],
        env=binding_env(version, cache),
        capture_output=True,
        text=True,
    )
    if check.returncode:
        raise ToolError(f"the {version} bindings do not import with the stubs: {check.stderr.strip()[-400:]}")
    # `import tensorrt` → the bindings, as NVIDIA's `tensorrt` package makes it (the module replaces itself).
    shim = d / "shim" / "tensorrt"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "import sys\nimport tensorrt_bindings\n\nsys.modules[__name__] = tensorrt_bindings\n"
    )
    (d / "READY").write_text(check.stdout.strip() + "\n")
    return d


# ------------------------------------------------------------------------------------------ introspect

# Runs inside a process where ``tensorrt_bindings`` is the real extension. Kinds: method, static_method,
# property, readonly_property, constant, enum, class.
_INTROSPECT = r"""
import inspect, json, sys
import tensorrt_bindings as trt

SKIP = {"_pybind11_conduit_v1_"}

def kind(owner, name):
    raw = inspect.getattr_static(owner, name)
    t = type(raw).__name__
    if t == "pybind11_static_property":
        return "static_property"
    if isinstance(raw, property):
        return "property" if raw.fset is not None else "readonly_property"
    if t == "instancemethod" or inspect.isfunction(raw):
        return "method"
    if isinstance(raw, (staticmethod, classmethod)) or t == "builtin_function_or_method":
        return "static_method"
    if isinstance(raw, type):
        return "enum" if hasattr(raw, "__members__") else "class"
    return "constant"

classes, enums, functions, constants = {}, {}, [], []

def visit(cls, qualname):
    if hasattr(cls, "__members__"):
        enums[qualname] = {
            "name_kind": kind(cls, "name"),
            "members": {k: int(v) for k, v in cls.__members__.items()},
        }
        return
    members = {}
    for name in dir(cls):
        if name.startswith("__") or name in SKIP:
            continue
        k = kind(cls, name)
        members[name] = k
        if k in ("enum", "class"):
            sub = getattr(cls, name)
            if getattr(sub, "__module__", "").startswith("tensorrt") and f"{qualname}.{name}" not in classes:
                visit(sub, f"{qualname}.{name}")
    bases = [b.__name__ for b in cls.__bases__ if b.__name__ not in ("object", "pybind11_object")]
    classes[qualname] = {"bases": bases, "members": members}

for name in dir(trt):
    if name.startswith("_"):
        continue
    obj = getattr(trt, name)
    if isinstance(obj, type):
        visit(obj, name)
    elif inspect.ismodule(obj):
        continue
    elif callable(obj):
        functions.append(name)
    else:
        constants.append(name)

json.dump({"version": trt.__version__, "classes": classes, "enums": enums,
           "functions": sorted(functions), "constants": sorted(constants)}, sys.stdout)
"""


def introspect(version: str, cache: Path = CACHE) -> dict[str, Any]:
    """The API of the prepared ``version``, read from the real extension in a subprocess."""
    res = subprocess.run(
        [sys.executable, "-c", _INTROSPECT], env=binding_env(version, cache), capture_output=True, text=True
    )
    if res.returncode:
        raise ToolError(f"introspecting {version} failed: {res.stderr.strip()[-600:]}")
    api = json.loads(res.stdout)
    project, _ = WHEELS[version]
    api["source"] = f"{project}=={version} wheel, introspected with stub libraries (scripts/tensorrt_api.py)"
    return api


def _write(api: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, **api}
    path = out / f"{api['version']}.json"
    from lsa_edge.io import write_json_atomic

    return write_json_atomic(path, doc, indent=1, sort_keys=True)


# -------------------------------------------------------------------------------- 8.5 from the sources


def _strip_comments(src: str) -> str:
    """C++ source without comments; string and char literals kept."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


_DEF = re.compile(
    r"\.(def|def_static|def_property|def_property_readonly|def_readwrite|def_readonly|"
    r"def_property_readonly_static|value)\s*\(\s*\"(\w+)\""
)
_DECL = re.compile(
    r"py::(class_|enum_)\s*<(?P<targs>[^;{]*?)>\s*(?P<var>\w+)?\s*[({]\s*(?P<scope>\w+)\s*,\s*\"(?P<name>\w+)\""
)
_VAR_DEF = re.compile(r"\b(\w+)\s*\.\s*def")
_AUTO_VAR = re.compile(r"\b(?:auto|py::class_<[^;]*?>)\s+(\w+)\s*=\s*$")
_MODULE_DEF = re.compile(r"\b(\w+)\s*\.\s*def\s*\(\s*\"(\w+)\"")
_DEF_KIND = {
    "def": "method",
    "def_static": "static_method",
    "def_property": "property",
    "def_readwrite": "property",
    "def_property_readonly": "readonly_property",
    "def_readonly": "readonly_property",
    "def_property_readonly_static": "static_property",
}


def parse_bindings(sources: dict[str, str]) -> dict[str, Any]:
    """Classes, enums and module functions declared by pybind11 code.

    A reader, not a compiler: it follows ``py::class_<T>(scope, "Name")`` / ``py::enum_`` declarations,
    the ``.def*("name", …)`` / ``.value("NAME", T::kNAME)`` / ``.export_values()`` calls chained on them or
    on a variable bound to them, ``m.def("name", …)`` module functions and ``m.attr("A") = m.attr("B")``
    aliases. Its recall is measured against real wheels (:func:`compare`) before its output is trusted.

    Returns {"classes": {qualname: {"bases", "members"}}, "functions": [...], "enums": {qualname:
    {"cpp": {python member: (C++ enum, enumerator)}, "file": source file}}, "aliases": {new: old}}.
    """
    classes: dict[str, dict[str, Any]] = {}
    enums: dict[str, dict[str, Any]] = {}
    functions: set[str] = set()
    aliases: dict[str, str] = {}
    for fname, src in sources.items():
        text = _strip_comments(src)
        for m in re.finditer(r"\b\w+\.attr\(\s*\"(\w+)\"\s*\)\s*=\s*\w+\.attr\(\s*\"(\w+)\"\s*\)", text):
            aliases[m.group(1)] = m.group(2)
        events: list[tuple[int, str, Any]] = []
        for m in _DECL.finditer(text):
            events.append((m.start(), "decl", m))
        for m in _DEF.finditer(text):
            events.append((m.start(), "def", m))
        for m in _VAR_DEF.finditer(text):
            events.append((m.start(), "var", m))
        for m in re.finditer(r"\.export_values\s*\(", text):
            events.append((m.start(), "export", m))
        events.sort(key=lambda e: e[0])
        var_class: dict[str, str] = {}
        scope_of: dict[str, str | None] = {}  # enum → the class it is declared in (None: the module)
        owner: str | None = None
        stmt_start = -1
        for pos, what, m in events:
            if owner is not None and _statement_ended(text, stmt_start, pos):
                owner = None
            if what == "decl":
                scope, name = m.group("scope"), m.group("name")
                parent = var_class.get(scope)
                qual = f"{parent}.{name}" if parent else name
                if m.group(1) == "enum_":
                    enums.setdefault(qual, {"cpp": {}, "file": fname})
                    scope_of[qual] = parent
                else:
                    classes.setdefault(qual, {"bases": _bases(m.group("targs")), "members": {}})
                if parent:
                    classes[parent]["members"][name] = "enum" if m.group(1) == "enum_" else "class"
                before = text[max(0, m.start() - 200) : m.start()]
                auto = _AUTO_VAR.search(before)
                for v in (m.group("var"), auto.group(1) if auto else None):
                    if v:
                        var_class[v] = qual
                owner, stmt_start = qual, m.start()
            elif what == "var":
                v = m.group(1)
                if v in var_class:
                    owner, stmt_start = var_class[v], m.start()
                elif v in ("m", "module") or v.endswith("module"):
                    mm = _MODULE_DEF.match(text, m.start())
                    if mm:
                        functions.add(mm.group(2))
                    owner = None
            elif what == "export" and owner in enums:
                parent = scope_of.get(owner)
                if parent:
                    for member in enums[owner]["cpp"]:
                        classes[parent]["members"][member] = "constant"
            elif what == "def" and owner is not None:
                kind_word, name = m.group(1), m.group(2)
                if kind_word == "value" and owner in enums:
                    cpp = re.match(r"\s*,\s*([\w:]+)", text[m.end() :])
                    parts = cpp.group(1).split("::") if cpp else [""]
                    enums[owner]["cpp"][name] = (parts[-2] if len(parts) > 1 else "", parts[-1])
                elif owner in classes and kind_word != "value" and not name.startswith("__"):
                    classes[owner]["members"][name] = _DEF_KIND[kind_word]
    return {"classes": classes, "functions": sorted(functions), "enums": enums, "aliases": aliases}


def _bases(targs: str) -> list[str]:
    parts = [p.strip() for p in targs.split(",")[1:]]
    return [p.split("::")[-1] for p in parts if p and not p.startswith(("std::", "py::")) and "<" not in p]


def _statement_ended(text: str, start: int, pos: int) -> bool:
    """Whether a ';' at the statement's own nesting level lies between ``start`` and ``pos``."""
    depth = 0
    for c in text[start:pos]:
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
            if depth < 0:
                return True
        elif c == ";" and depth == 0:
            return True
    return False


_ENUM = re.compile(r"enum\s+class\s+(\w+)\s*(?::\s*[\w:]+)?\s*\{(?P<body>[^}]*)\}")
_CONST = re.compile(r"constexpr\s+[\w:]+\s+(\w+)\s*(?:=|\{)\s*([^;}]+)")


def _cpp_int(expr: str, names: dict[str, int]) -> int:
    """Value of a C++ integral constant expression made of literals, names, | & << >> + - and casts."""
    expr = re.sub(r"static_cast<[\w:]+>", "", expr)
    expr = re.sub(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]*\b", r"\1", expr)
    expr = re.sub(r"\b\w+::(\w+)", r"\1", expr)  # TacticSource::kCUBLAS → kCUBLAS
    return int(eval(expr, {"__builtins__": {}}, names))


def parse_enum_values(headers: dict[str, str]) -> dict[str, dict[str, int | None]]:
    """C++ ``enum class Name : T { kA = 0, kB, … }`` → {Name: {kA: 0, kB: 1}}: implicit values counted,
    deprecation macros after the name skipped, constants (``kPLUGIN_VERSION_PYTHON_BIT``) resolved."""
    texts = [_strip_comments(src) for src in headers.values()]
    constants: dict[str, int] = {}
    for text in texts:
        for m in _CONST.finditer(text):
            try:
                constants[m.group(1)] = _cpp_int(m.group(2), constants)
            except Exception:  # not an integral constant expression we can evaluate: skip it
                continue
    out: dict[str, dict[str, int | None]] = {}
    for text in texts:
        for m in _ENUM.finditer(text):
            values: dict[str, int | None] = {}
            nxt: int | None = 0
            for item in m.group("body").split(","):
                head, _, expr = (part.strip() for part in item.partition("="))
                if not head:
                    continue
                name = head.split()[0]  # "kSTRICT_TYPES TRT_DEPRECATED_ENUM" → kSTRICT_TYPES
                if expr:
                    known = {k: v for k, v in values.items() if v is not None}
                    try:
                        nxt = _cpp_int(expr, {**constants, **known})
                    except Exception:
                        nxt = None
                values[name] = nxt
                nxt = None if nxt is None else nxt + 1
            out.setdefault(m.group(1), values)
    return out


def _git_files(repo: Path, tag: str, prefixes: tuple[str, ...], suffixes: tuple[str, ...]) -> dict[str, str]:
    git = ["git", f"--git-dir={repo}"] if (repo / "HEAD").is_file() else ["git", "-C", str(repo)]
    names = subprocess.run(
        [*git, "ls-tree", "-r", "--name-only", tag], capture_output=True, text=True, check=True
    ).stdout.split()
    files = {}
    for name in names:
        if name.startswith(prefixes) and name.endswith(suffixes):
            files[name] = subprocess.run(
                [*git, "show", f"{tag}:{name}"], capture_output=True, text=True, check=True
            ).stdout
    return files


def _python_level(init_py: str) -> tuple[set[str], dict[str, set[str]]]:
    """Functions the package's ``__init__.py`` adds (``def nptype``) and attributes it sets on classes."""
    funcs = set(re.findall(r"^def (\w+)\(", init_py, re.M))
    attrs: dict[str, set[str]] = {}
    for cls, attr in re.findall(r"^(\w+)\.(\w+)\s*=", init_py, re.M):
        if not attr.startswith("__"):
            attrs.setdefault(cls, set()).add(attr)
    return funcs, attrs


def from_sources(repo: Path, tag: str, reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """The API at ``tag`` read from NVIDIA's binding sources. Enum values come from the C++ headers; the
    ONNX parser's enums (its header lives in a submodule that is not in the tree) take the values of
    ``reference`` (a neighbouring release's introspected API) where the names agree, else null."""
    sources = _git_files(repo, tag, ("python/src/",), (".cpp",))
    headers = _git_files(repo, tag, ("include/",), (".h",))
    inits = _git_files(repo, tag, ("python/packaging/",), ("tensorrt/__init__.py",))
    if not sources:
        raise ToolError(f"no python/src/*.cpp at {tag} in {repo}")
    api = parse_bindings(sources)
    values = parse_enum_values(headers)
    ref_enums = (reference or {}).get("enums", {})
    enums: dict[str, Any] = {}
    for qual, info in api["enums"].items():
        ref = ref_enums.get(qual, {})
        from_parser = "/parsers/" in info["file"]
        out: dict[str, int | None] = {}
        used_reference = False
        for py_name, (cpp_enum, enumerator) in info["cpp"].items():
            table = {} if from_parser else values.get(cpp_enum or qual.split(".")[-1], {})
            value = table.get(enumerator)
            if value is None and py_name in ref.get("members", {}):
                value, used_reference = ref["members"][py_name], True
            out[py_name] = value
        enums[qual] = {"name_kind": ref.get("name_kind", "property"), "members": out}
        if used_reference and reference:
            enums[qual]["values_from"] = f"{reference['version']} wheel"
    for new, old in api["aliases"].items():
        if old in enums:
            enums[new] = enums[old]
    init = next((t for n, t in sorted(inits.items()) if "bindings_wheel" in n), None) or next(
        iter(inits.values()), ""
    )
    funcs, attrs = _python_level(init)
    for cls, names in attrs.items():
        for name in names:
            if cls in api["classes"] and f"{cls}.{name}" not in enums:
                api["classes"][cls]["members"].setdefault(name, "constant")
    if re.search(r"^Logger\.Severity\s*=\s*ILogger\.Severity", init, re.M) and "ILogger.Severity" in enums:
        enums["Logger.Severity"] = enums["ILogger.Severity"]
        api["classes"].get("Logger", {}).get("members", {})["Severity"] = "enum"
    for info in api["classes"].values():  # inherited members, as dir() shows them on the wheels
        for base in _all_bases(api["classes"], info["bases"]):
            for name, kind in api["classes"][base]["members"].items():
                info["members"].setdefault(name, kind)
    return {
        "version": tag.lstrip("v"),
        "source": f"NVIDIA/TensorRT binding sources at tag {tag} (python/src, include/, python/packaging), "
        "read by scripts/tensorrt_api.py",
        "classes": api["classes"],
        "enums": enums,
        "functions": sorted(set(api["functions"]) | funcs),
        "constants": [],
    }


def _all_bases(classes: dict[str, Any], bases: list[str]) -> list[str]:
    out, todo = [], list(bases)
    while todo:
        b = todo.pop()
        if b in classes and b not in out:
            out.append(b)
            todo += classes[b]["bases"]
    return out


def compare(parsed: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    """How well the source reader recovers a wheel's API: recall/precision of (class, member) names and
    of enum members, and agreement of kinds and values."""

    def names(api: dict[str, Any]) -> dict[tuple[str, str], str]:
        out = {(c, m): k for c, info in api["classes"].items() for m, k in info["members"].items()}
        out.update({("", f): "function" for f in api["functions"]})
        return out

    def enum_values(api: dict[str, Any]) -> dict[tuple[str, str], Any]:
        return {(e, m): v for e, info in api["enums"].items() for m, v in info["members"].items()}

    p, r = names(parsed), names(real)
    common = set(p) & set(r)
    pe, re_ = enum_values(parsed), enum_values(real)
    ecommon = set(pe) & set(re_)
    known = {k for k in ecommon if pe[k] is not None}
    kind_ok = sum(
        p[k] == r[k] or {p[k], r[k]} <= {"property", "readonly_property"} for k in common
    )  # write-only setters read as properties
    return {
        "members_recall": len(common) / max(1, len(r)),
        "members_precision": len(common) / max(1, len(p)),
        "kinds_agree": kind_ok / max(1, len(common)),
        "enum_members_recall": len(ecommon) / max(1, len(re_)),
        "enum_values_agree": sum(pe[k] == re_[k] for k in known) / max(1, len(known)),
        "enum_values_unknown": len(ecommon) - len(known),  # the ONNX parser's: its header is a submodule
        "missed_examples": sorted(f"{c}.{m}" for c, m in set(r) - set(p))[:12],
        "extra_examples": sorted(f"{c}.{m}" for c, m in set(p) - set(r))[:12],
    }


# ------------------------------------------------------------------------------------------- conformance

CONFORMANCE_TESTS = (
    "tests/test_engines_tensorrt.py",
    "tests/test_backends_tensorrt.py",
    "tests/test_calibration_trt_calibrator.py",
    "tests/test_engines_build.py",
)


def _has(api: dict[str, Any], name: str) -> str | None:
    """The kind of ``name`` ("Class.member", "Enum.MEMBER" or a module-level name) in ``api``, else None."""
    if "." not in name:
        if name in api["classes"]:
            return "class"
        if name in api["enums"]:
            return "enum"
        return "function" if name in api["functions"] else None
    owner, member = name.rsplit(".", 1)
    if owner in api["enums"]:
        return "member" if member in api["enums"][owner]["members"] else None
    return api["classes"].get(owner, {}).get("members", {}).get(member)


def conformance(data: Path = DATA) -> int:
    """Run the TensorRT tests through the strict fake, collect the names lsa-edge used per API version, and
    print where each exists. Every name used on a version's path exists there (the fake would have raised);
    the table shows which names are generation-specific and so must sit behind a capability check."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        usage_file = Path(tmp) / "usage.json"
        env = {**os.environ, "LSA_EDGE_TRT_USAGE": str(usage_file)}
        res = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CONFORMANCE_TESTS],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-500:])
        if res.returncode or not usage_file.exists():
            print(res.stdout[-3000:], res.stderr[-2000:], file=sys.stderr)
            return 1
        usage = json.loads(usage_file.read_text())
    apis = {p.stem: json.loads(p.read_text()) for p in sorted(data.glob("*.json"))}
    order = sorted(apis, key=lambda v: [int(x) for x in v.split(".")])
    every = sorted(set().union(*map(set, usage.values())))
    print(f"\n{'API version':<12} {'names used':>10} {'missing there':>13}")
    for v in order:
        used = usage.get(v, [])
        missing = [n for n in used if _has(apis[v], n) is None]
        print(f"{v:<12} {len(used):>10} {len(missing):>13}")
    specific = [n for n in every if len({_has(apis[v], n) is not None for v in order}) > 1]
    print(f"\n{len(every)} distinct names used; {len(specific)} exist in some generations only:")
    print(f"{'name':<48} " + " ".join(f"{v:>10}" for v in order))
    for n in specific:
        print(f"{n:<48} " + " ".join(f"{'yes' if _has(apis[v], n) else '-':>10}" for v in order))
    return 0


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("fetch", "dump"):
        p = sub.add_parser(name)
        p.add_argument("--cache", type=Path, default=CACHE, help="where the unpacked wheels and stubs go")
        p.add_argument("--versions", default=",".join(WHEELS), help="comma-separated (default: all)")
        p.add_argument("--out", type=Path, default=DATA, help="dump: where the JSON goes")
        p.add_argument("--quiet", action="store_true")
        p.add_argument(
            "--optional",
            action="store_true",
            help="exit 0 when a version cannot be prepared here (no compiler, no index): its tests skip",
        )
    sub.add_parser("conformance", help="run the TensorRT tests and tabulate the real names lsa-edge uses")
    p = sub.add_parser("sources")
    p.add_argument("--repo", type=Path, required=True, help="a clone (or bare git dir) of NVIDIA/TensorRT")
    p.add_argument("--tag", default=SOURCE_TAG)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--out", type=Path, default=DATA)
    p.add_argument(
        "--check",
        default="v8.6.1=8.6.1,v10.3.0=10.3.0",
        help="TAG=VERSION pairs: read TAG's sources and compare with VERSION's wheel",
    )
    args = ap.parse_args(argv)

    if args.cmd == "conformance":
        return conformance()
    try:
        if args.cmd in ("fetch", "dump"):
            for v in args.versions.split(","):
                try:
                    d = fetch(v, args.cache, quiet=args.quiet)
                except ToolError as err:
                    if not args.optional:
                        raise
                    print(
                        f"tensorrt_api: skipping {v}: {err} (its real-bindings tests will skip)",
                        file=sys.stderr,
                    )
                    continue
                if args.cmd == "fetch":
                    print(f"{v}: {d}")
                else:
                    api = introspect(v, args.cache)
                    path = _write(api, args.out)
                    n = sum(len(c["members"]) for c in api["classes"].values())
                    print(
                        f"{v}: {len(api['classes'])} classes, {n} members, {len(api['enums'])} enums → {path}"
                    )
            return 0
        reference_version = "8.6.1"
        fetch(reference_version, args.cache)
        reference = introspect(reference_version, args.cache)
        for pair in filter(None, args.check.split(",")):
            tag, version = pair.split("=")
            fetch(version, args.cache)
            report = compare(from_sources(args.repo, tag), introspect(version, args.cache))
            print(f"source reader at {tag} vs {version} wheel: {json.dumps(report, indent=1)}")
        api = from_sources(args.repo, args.tag, reference)
        path = _write(api, args.out)
        print(f"{args.tag}: {len(api['classes'])} classes, {len(api['enums'])} enums → {path}")
        return 0
    except ToolError as err:
        print(f"tensorrt_api: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
