#!/usr/bin/env bash
# The one prepared check for a lent GPU machine (the `device` tool): what this CPU-only machine cannot run.
#
#   bash scripts/device_check.sh            # on the GPU machine, from the repository root
#
# Runs the `gpu`-marked tests — a CUDA training run with fp16 and bf16 mixed precision, the PyTorch
# backend and the pipeline on CUDA, cuda-python buffers and GPU probing (lsa_edge/backends/_cuda.py),
# ONNX Runtime's CUDA provider where it is installed, TensorRT builds where TensorRT is — then prints one
# table (test, outcome, seconds, why skipped) and `lsa-edge doctor`'s GPU lines. Needs no install and no
# network: the three stage folders are mapped into one `lsa_edge` package in a temporary folder, as the
# wheel would install them. Writes gpu.xml (JUnit) and device_check.txt to $OUT (default: ./device_check).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device_check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
cp -r lsa_edge "$SITE/lsa_edge"
for stage in training engines calibration; do
    rm -rf "$SITE/lsa_edge/$stage"
    cp -r "$stage" "$SITE/lsa_edge/$stage"
done
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONSAFEPATH=1
REPO=$(pwd)
# `python -m` puts the working directory first on sys.path: run from $SITE so ./lsa_edge (no stages inside)
# is never the one imported.
cd "$SITE"

{
    echo "== machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
    "$PY" - <<'EOF'
import importlib, platform
import lsa_edge, lsa_edge.engines, lsa_edge.calibration  # the assembled package, stages inside
print(f"lsa_edge from {lsa_edge.__file__}")
print(f"python {platform.python_version()} on {platform.machine()}")
for name in ("torch", "onnxruntime", "cuda.bindings", "cupy", "tensorrt", "cv2", "numpy"):
    try:
        m = importlib.import_module(name)
        extra = ""
        if name == "torch":
            extra = f" (CUDA {m.version.cuda}, available: {m.cuda.is_available()})"
        if name == "onnxruntime":
            extra = f" (providers: {', '.join(m.get_available_providers())})"
        print(f"  {name:14} {getattr(m, '__version__', '?')}{extra}")
    except Exception as err:  # report, do not stop
        print(f"  {name:14} missing ({type(err).__name__}: {str(err)[:80]})")
EOF
} 2>&1 | tee "$OUT/device_check.txt"

start=$(date +%s)
"$PY" -m pytest -m gpu -q -rs -p no:cacheprovider --rootdir="$REPO" --junitxml="$OUT/gpu.xml" \
    "$REPO"/tests/test_gpu.py "$REPO"/tests/test_backends_cuda.py "$REPO"/tests/test_engines_tensorrt.py \
    "$REPO"/tests/test_backends_tensorrt.py \
    2>&1 | tee -a "$OUT/device_check.txt"
status=${PIPESTATUS[0]}
echo "pytest exit status $status in $(( $(date +%s) - start )) s" | tee -a "$OUT/device_check.txt"

"$PY" - "$OUT/gpu.xml" <<'EOF' 2>&1 | tee -a "$OUT/device_check.txt"
import sys
import xml.etree.ElementTree as ET

rows = []
for case in ET.parse(sys.argv[1]).iter("testcase"):
    outcome, why = "passed", ""
    for child in case:
        if child.tag in ("failure", "error", "skipped"):
            outcome = {"failure": "FAILED", "error": "ERROR", "skipped": "skipped"}[child.tag]
            why = (child.get("message") or "").replace("\n", " ")[:90]
    rows.append((case.get("name"), outcome, float(case.get("time") or 0), why))
print()
print(f"| {'gpu test':<58} | {'outcome':<8} | {'s':>6} | why skipped / failed")
print(f"| {'-' * 58} | {'-' * 8} | {'-' * 6} | ---")
for name, outcome, secs, why in rows:
    print(f"| {name:<58} | {outcome:<8} | {secs:6.1f} | {why}")
counts = {o: sum(r[1] == o for r in rows) for o in ("passed", "skipped", "FAILED", "ERROR")}
print(", ".join(f"{v} {k}" for k, v in counts.items() if v))
EOF

echo "== lsa-edge doctor (GPU lines)" | tee -a "$OUT/device_check.txt"
"$PY" -m lsa_edge doctor --no-cameras 2>&1 | grep -E "GPU|CUDA|TensorRT|providers|inference" | tee -a "$OUT/device_check.txt"
exit "$status"
