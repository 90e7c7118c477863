"""Benchmark: the shipped BlazeFace detectors on LFWA (250×250 LFW deep-funneled images, one centred face)
and their ONNX Runtime CPU latency at the model input size.

A detection counts as the image's face when its box centre lies within ``--centre-tol`` pixels of the image
centre. Prints, per variant and threshold: the detection rate, the images with no detection at all, the
extra detections, the latency (median over repeats of the model call alone and of detect() on a 640×480
frame) and the model size.

    python benchmarks/detector_lfwa.py --data ../shared/data/lfwa --n 200
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from lsa_edge.detector import FaceDetector, shipped_model
from lsa_edge.io import write_json_atomic


def lfwa_images(data: Path, n: int, split: str) -> list[Path]:
    """Every k-th image of the split (deterministic, spread over identities)."""
    want = {"train": "0", "val": "1", "test": "2"}[split]
    with open(data / "partition.csv", newline="") as f:
        rows = [r["image_id"] for r in csv.DictReader(f) if r["partition"] == want]
    step = max(1, len(rows) // n)
    return [data / "images" / r for r in rows[::step][:n]]


def latency_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/lfwa", type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--split", default="test", choices=["train", "val", "test"])
    ap.add_argument("--thresholds", default="0.5,0.6")
    ap.add_argument("--centre-tol", type=float, default=40.0, help="pixels from the image centre")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0 = its choice)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    files = lfwa_images(args.data, args.n, args.split)
    images = [cv2.imread(str(f)) for f in files]
    rows = []
    for variant in ("full", "short"):
        det = FaceDetector(variant, min_score=0.01, threads=args.threads)  # filter thresholds below
        faces = [det(im) for im in images]
        for thr in map(float, args.thresholds.split(",")):
            hit = miss_all = extra = 0
            for im, fs in zip(images, faces):
                fs = [f for f in fs if f.score >= thr]
                h, w = im.shape[:2]
                centred = [
                    f
                    for f in fs
                    if np.hypot((f.box[0] + f.box[2] - w) / 2, (f.box[1] + f.box[3] - h) / 2)
                    <= args.centre_tol
                ]
                hit += bool(centred)
                miss_all += not fs
                extra += len(fs) - min(1, len(centred))
            rows.append(
                {
                    "variant": variant,
                    "threshold": thr,
                    "images": len(images),
                    "detected": hit,
                    "rate": hit / len(images),
                    "no_detection": miss_all,
                    "extra": extra,
                }
            )
        det = FaceDetector(variant, threads=args.threads)  # the default threshold, as deployed
        s = det.input_size
        x = np.zeros((1, 3, s, s), np.float32)
        frame = np.full((480, 640, 3), 96, np.uint8)
        frame[100:350, 200:450] = images[0]  # one 250×250 LFW face in a VGA frame
        model_ms = latency_ms(lambda x=x, det=det: det.runner(x), args.repeats)
        detect_ms = latency_ms(lambda det=det, frame=frame: det(frame), args.repeats)
        size = shipped_model(variant).stat().st_size
        for r in rows:
            if r["variant"] == variant:
                r.update(model_ms=model_ms, detect_640x480_ms=detect_ms, onnx_mb=size / 1e6, input=s)
    print(
        f"{'variant':8} {'thr':>5} {'detected':>12} {'none':>5} {'extra':>6} {'model ms':>9} {'detect ms':>10} {'MB':>5}"
    )
    for r in rows:
        print(
            f"{r['variant']:8} {r['threshold']:5.2f} {r['detected']:4d}/{r['images']:<4d}{100 * r['rate']:5.1f}% "
            f"{r['no_detection']:5d} {r['extra']:6d} {r['model_ms']:9.2f} {r['detect_640x480_ms']:10.2f} {r['onnx_mb']:5.2f}"
        )
    if args.json:
        write_json_atomic(args.json, rows)


if __name__ == "__main__":
    main()
