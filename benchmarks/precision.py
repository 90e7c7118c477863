"""Benchmark: precision on this CPU — FP32, FP16 and INT8 (Q/DQ u8/s8 and s8/s8) through ONNX Runtime
against torch eager, side by side in one run, for trained checkpoints (e.g. ResNet-18 and MobileNetV2 LSA).

For each checkpoint: ``lsa-edge build`` steps (export + simplify, FP16, INT8 calibration + both Q/DQ
flavours) with their wall times; latency per face at batch 1 and 16 and throughput, as medians over
repeats measured round-robin (every artifact once per round, so drifts of a shared machine hit all alike);
mean accuracy of every artifact on the test split and its delta against FP32; and, with --profile, where
the time goes by op type (why INT8 pays or not).

    python benchmarks/precision.py runs/r18/best.pt runs/mnv2/best.pt --data ../shared/data/celeba-10k \\
        --out runs/precision --json benchmarks/results/precision.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lsa_edge.cli import setup_logging
from lsa_edge.io import write_json_atomic
from lsa_edge.manifest import MODEL_FP16_ONNX, MODEL_INT8_CPU_ONNX, MODEL_INT8_TRT_ONNX, MODEL_ONNX, Manifest

ARTIFACTS = {  # label → file in the build folder, or "torch"
    "torch eager fp32": "torch",
    "ORT fp32": MODEL_ONNX,
    "ORT fp16": MODEL_FP16_ONNX,
    "ORT int8 u8/s8 (cpu)": MODEL_INT8_CPU_ONNX,
    "ORT int8 s8/s8 (trt)": MODEL_INT8_TRT_ONNX,
}


def build_all(ckpt: str, out: Path, data: str, method: str) -> tuple[dict, dict[str, Manifest]]:
    """Build the int8 and fp16 folders (sharing one export); returns (timings, manifests)."""
    from lsa_edge.engines.build import BuildConfig, build

    timings: dict = {}
    manifests: dict[str, Manifest] = {}
    common = dict(
        calib_data=data, detector=False, progress=False, max_accuracy_drop=100.0, calib_method=method
    )
    for prec in ("int8", "fp16"):
        t0 = time.perf_counter()
        m = build(ckpt, BuildConfig(precision=prec, out=out / prec, **common))
        timings[prec] = {**(m.timings_s or {}), "total": time.perf_counter() - t0}
        manifests[prec] = m
    return timings, manifests


def latency(fns: dict, x: np.ndarray, rounds: int, calls: dict[int, int]) -> dict:
    """Median ms per call at each batch size, round-robin over the artifacts."""
    samples: dict = defaultdict(list)
    for fn in fns.values():  # warm-up (allocations, kernel selection)
        for b in calls:
            fn(x[:b])
    for _ in range(rounds):
        for name, fn in fns.items():
            for b, n in calls.items():
                xb = x[:b]
                t0 = time.perf_counter()
                for _ in range(n):
                    fn(xb)
                samples[(name, b)].append((time.perf_counter() - t0) / n * 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def profile_ops(path: Path, x: np.ndarray, runs: int = 20, warmup: int = 3) -> dict[str, float]:
    """ONNX Runtime's own per-node timings summed by op type (ms per batch), warm-up runs left out."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(path.with_suffix("")) + "_prof"
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for _ in range(warmup + runs):
        sess.run(None, {name: x})
    prof = Path(sess.end_profiling())
    events = json.loads(prof.read_text())
    prof.unlink()
    spans = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run")[warmup:]
    by_op: dict[str, float] = defaultdict(float)
    for e in events:
        kernel = e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
        if kernel and any(a <= e["ts"] <= b for a, b in spans):
            by_op[e["args"]["op_name"]] += e["dur"] / 1000 / len(spans)
    return dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", default="runs/precision")
    ap.add_argument("--method", default="percentile")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="per-op-type time, FP32 vs INT8 u8/s8, batch 16")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    setup_logging(0, True)

    import torch
    from rich.console import Console
    from rich.table import Table

    from lsa_edge.backends import OnnxRuntimeBackend
    from lsa_edge.calibration.dataset import load_faces
    from lsa_edge.engines.export import read_card
    from lsa_edge.training.checkpoint import load_model

    console = Console(width=160)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "models": {},
    }
    for ckpt in args.checkpoints:
        model, card, _ = load_model(ckpt, "cpu")
        name = f"{card.model.get('backbone')}-{card.model.get('head')}"
        out = Path(args.out) / name
        timings, manifests = build_all(ckpt, out, args.data, args.method)
        pre = card.preprocessing
        test = load_faces(args.data, pre, split="test", count=None)
        x = test.tensors(pre)

        def torch_fn(xb: np.ndarray, model=model) -> np.ndarray:
            with torch.inference_mode():
                return torch.sigmoid(model(torch.from_numpy(xb))).numpy()

        fns = {}
        for label, file in ARTIFACTS.items():
            if file == "torch":
                fns[label] = torch_fn
            else:
                folder = "fp16" if file == MODEL_FP16_ONNX else "int8"
                fns[label] = OnnxRuntimeBackend(out / folder / file).predict
        # Accuracy on the test split (card thresholds), every artifact against ORT FP32.
        thr = np.asarray(read_card(out / "int8" / MODEL_ONNX).thresholds, dtype=np.float32)
        probs = {label: fn(x) for label, fn in fns.items()}
        y = test.labels.astype(bool)
        acc = {label: float(((p >= thr) == y).mean() * 100) for label, p in probs.items()}
        lat = latency(fns, x, args.rounds, {1: 20, 16: 4})
        rows = {}
        for label in fns:
            b1, b16 = lat[(label, 1)], lat[(label, 16)]
            rows[label] = {
                "ms_batch1": b1,
                "ms_per_face_batch16": b16 / 16,
                "faces_per_s_batch16": 16_000 / b16,
                "test_accuracy": acc[label],
                "delta_vs_fp32": acc[label] - acc["ORT fp32"],
                "max_abs_diff_vs_fp32": float(np.abs(probs[label] - probs["ORT fp32"]).max()),
            }
        entry = {
            "checkpoint": str(ckpt),
            "macs": card.model.get("macs"),
            "params": card.model.get("params"),
            "test_faces": len(x),
            "build_seconds": timings,
            "rows": rows,
            "files_mb": {
                k: v["bytes"] / 1e6
                for m in manifests.values()
                for k, v in (m.files or {}).items()
                if k.endswith(".onnx")
            },
        }
        if args.profile:
            xb = x[:16]
            entry["profile_ms_batch16"] = {
                lbl: profile_ops(out / "int8" / f, xb)
                for lbl, f in (("fp32", MODEL_ONNX), ("int8 u8/s8", MODEL_INT8_CPU_ONNX))
            }
        results["models"][name] = entry

        tab = Table(
            title=f"{name} ({(card.model.get('macs') or 0) / 1e6:.0f} MMACs, {len(x)} test faces) — {results['machine']}"
        )
        for col in (
            "artifact",
            "ms @ b1",
            "ms/face @ b16",
            "faces/s @ b16",
            "speed-up vs ORT fp32 (b16)",
            "test acc %",
            "Δ vs fp32",
            "max |Δp|",
        ):
            tab.add_column(col, justify="left" if col == "artifact" else "right")
        base = rows["ORT fp32"]["ms_per_face_batch16"]
        for label, r in rows.items():
            tab.add_row(
                label,
                f"{r['ms_batch1']:.2f}",
                f"{r['ms_per_face_batch16']:.2f}",
                f"{r['faces_per_s_batch16']:.0f}",
                f"{base / r['ms_per_face_batch16']:.2f}×",
                f"{r['test_accuracy']:.2f}",
                f"{r['delta_vs_fp32']:+.2f}",
                f"{r['max_abs_diff_vs_fp32']:.3f}",
            )
        console.print(tab)
        t = timings["int8"]
        console.print(
            f"build wall time: export {t.get('export', 0):.1f} s, simplify {t.get('simplify', 0):.1f} s, "
            f"calibrate ({args.method}, 512 faces) {t.get('calibrate', 0):.1f} s, quantize TensorRT "
            f"{t.get('quantize_tensorrt', 0):.1f} s + CPU {t.get('quantize_cpu', 0):.1f} s, FP16 "
            f"{timings['fp16'].get('fp16', 0):.1f} s; whole int8 build {t['total']:.1f} s"
        )
        if args.profile:
            prof = entry["profile_ms_batch16"]
            ptab = Table(title=f"{name}: ONNX Runtime time by op type, batch 16 (ms)")
            ptab.add_column("fp32 op")
            ptab.add_column("ms", justify="right")
            ptab.add_column("int8 u8/s8 op")
            ptab.add_column("ms", justify="right")
            a, b = list(prof["fp32"].items())[:10], list(prof["int8 u8/s8"].items())[:10]
            for i in range(max(len(a), len(b))):
                ra = a[i] if i < len(a) else ("", 0.0)
                rb = b[i] if i < len(b) else ("", 0.0)
                ptab.add_row(ra[0], f"{ra[1]:.2f}", rb[0], f"{rb[1]:.2f}")
            console.print(ptab)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.json, results, indent=1)
        console.print(f"wrote {args.json}")
    logging.shutdown()


if __name__ == "__main__":
    main()
