"""Benchmark: many camera streams against ``lsa-edge serve`` (Triton), and the same frames through local
Pipelines, side by side in one run.

Starts ``lsa-edge serve`` (this Python: it needs the serve extra and a shared libpython, see README "Many
cameras") on free ports, or uses ``--url HOST:PORT`` of a running one, then for each stream count runs that
many client threads, each feeding pre-rendered demo frames as fast as answers come back:

- ``remote``: ``Pipeline(backend="triton://...")`` per stream — detection, alignment and tracking-free
  results on the client, the faces of each frame in one request to ``lsa_edge_attributes``, which Triton's
  dynamic batcher joins across streams;
- ``faces``: each stream sends a frame's worth of aligned faces straight to ``lsa_edge_attributes``, as
  devices that detect and align on their own hardware do: the server's side of ``remote`` alone, without
  16 clients' face detection competing for this machine's cores (the tensors are random: the model's
  cost does not depend on their content);
- ``frames``: each frame sent whole to the ``lsa_edge`` model (the server detects, aligns and infers);
- ``local``: a local Pipeline per stream (ONNX Runtime on this machine), no server.

Prints frames/s over all streams, p50/p95 frame latency, throughput against one stream, and for the served
modes the faces per attribute-model execution Triton formed (from its Prometheus metrics:
``nv_inference_count / nv_inference_exec_count``). Medians over ``--repeats``.

    python benchmarks/serve_load.py --streams 1,4,16 --frames 200 --json benchmarks/results/serve_load.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str, str, Path]:
    http, grpc, metrics = _free_ports(3)
    log = Path(tempfile.mkstemp(prefix="serve-load-", suffix=".log")[1])
    cmd = [sys.executable, "-m", "lsa_edge", "serve", "--address", "127.0.0.1", "--http-port", str(http)]
    cmd += ["--grpc-port", str(grpc), "--metrics-port", str(metrics), "--max-batch", str(args.max_batch)]
    cmd += ["--queue-delay-us", str(args.queue_delay_us), "--instances", str(args.instances)]
    cmd += [*([args.model] if args.model else [])]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while "Ctrl-C or SIGTERM stops" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            sys.exit(f"lsa-edge serve did not start; its log:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc, f"127.0.0.1:{http}", f"http://127.0.0.1:{metrics}/metrics", log


def triton_counts(metrics_url: str, model: str) -> tuple[float, float]:
    """(inferences, executions) of ``model`` so far, from Triton's Prometheus metrics."""
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()

    def value(name: str) -> float:
        m = re.search(rf'^{name}{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.M)
        return float(m.group(1)) if m else 0.0

    return value("nv_inference_count"), value("nv_inference_exec_count")


class _FaceClient:
    """A stream that sends ``n`` aligned faces per frame to ``lsa_edge_attributes``."""

    def __init__(self, url: str, n: int, size: tuple[int, int]) -> None:
        import tritonclient.http as http

        self.http, self.client = http, http.InferenceServerClient(url, network_timeout=60)
        self.faces = np.random.default_rng(0).standard_normal((n, 3, *size)).astype(np.float32)

    def predict(self, frame: np.ndarray) -> Any:
        x = self.http.InferInput("faces", list(self.faces.shape), "FP32")
        x.set_data_from_numpy(self.faces)
        return self.client.infer("lsa_edge_attributes", [x]).as_numpy("probabilities")

    def close(self) -> None:
        self.client.close()


class _FrameClient:
    """A stream that sends whole frames to the ``lsa_edge`` model."""

    def __init__(self, url: str) -> None:
        import tritonclient.http as http

        self.http, self.client = http, http.InferenceServerClient(url, network_timeout=60)

    def predict(self, frame: np.ndarray) -> Any:
        x = self.http.InferInput("frame", list(frame.shape), "UINT8")
        x.set_data_from_numpy(frame)
        return json.loads(self.client.infer("lsa_edge", [x]).as_numpy("faces")[0])

    def close(self) -> None:
        self.client.close()


def run_streams(
    n: int, make: Callable[[], Any], frames: list[np.ndarray], per_stream: int
) -> dict[str, float]:
    """``n`` threads, each with its own client from ``make()`` (made in that thread: tritonclient's HTTP
    client belongs to its thread), warmed up, then all predicting ``per_stream`` frames at once."""
    latencies: list[list[float]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    start = threading.Barrier(n + 1)

    def work(i: int) -> None:
        try:
            c = make()
            for f in frames[:3]:  # warm-up: sessions, connections, the server's first batches
                c.predict(f)
        except BaseException as err:
            errors.append(err)
            start.abort()
            raise
        lat = latencies[i]
        start.wait()
        try:
            for k in range(per_stream):
                t = time.perf_counter()
                c.predict(frames[(k + i) % len(frames)])
                lat.append(time.perf_counter() - t)
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    try:
        start.wait()
    except threading.BrokenBarrierError:
        for t in threads:
            t.join()
        raise SystemExit(f"a stream could not start: {errors[0] if errors else 'see above'}") from None
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array([x for lt in latencies for x in lt]) * 1000
    if errors or len(lat) != n * per_stream:
        raise SystemExit(f"a stream failed: {errors[:1] or 'see above'}")
    return {
        "fps": n * per_stream / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
    }


def measure(args: argparse.Namespace, url: str, metrics_url: str) -> list[dict[str, Any]]:
    from lsa_edge import Pipeline
    from lsa_edge.demo import scene
    from lsa_edge.package import ModelPackage

    frames = [scene(args.faces, frame=i) for i in range(24)]
    size = ModelPackage.open(args.model).card.preprocessing.input_size
    makers: dict[str, Callable[[], Any]] = {
        "remote": lambda: Pipeline(args.model, backend=f"triton://{url}", tracking=False),
        "faces": lambda: _FaceClient(url, args.faces, size),
        "frames": lambda: _FrameClient(url),
        "local": lambda: Pipeline(args.model, tracking=False),
    }
    rows = []
    for mode in args.modes:
        for n in args.streams:
            per_stream = max(4, args.frames // n)
            reps, batch = [], []
            for _ in range(args.repeats):
                before = triton_counts(metrics_url, "lsa_edge_attributes")
                reps.append(run_streams(n, makers[mode], frames, per_stream))
                after = triton_counts(metrics_url, "lsa_edge_attributes")
                calls = after[1] - before[1]
                batch.append((after[0] - before[0]) / calls if calls else float("nan"))
            row = {k: statistics.median(r[k] for r in reps) for k in reps[0]}
            row.update(
                mode=mode, streams=n, frames_per_stream=per_stream, faces_per_call=statistics.median(batch)
            )
            if mode == "frames":  # the server's own detector feeds its Pipeline, not the batcher
                row["faces_per_call"] = float("nan")
            rows.append(row)
            print(f"  {mode:6} {n:3} streams: {row['fps']:7.1f} frames/s", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    one = {r["mode"]: r["fps"] for r in rows if r["streams"] == 1}
    lines = [
        f"{'mode':8}{'streams':>8}{'frames/s':>10}{'× 1 stream':>11}{'p50 ms':>8}{'p95 ms':>8}{'faces/call':>11}"
    ]
    for r in rows:
        ratio = r["fps"] / one[r["mode"]] if r["mode"] in one else float("nan")
        per_call = "" if r["faces_per_call"] != r["faces_per_call"] else f"{r['faces_per_call']:.1f}"
        lines.append(
            f"{r['mode']:8}{r['streams']:>8}{r['fps']:>10.1f}{ratio:>11.2f}{r['p50_ms']:>8.1f}{r['p95_ms']:>8.1f}{per_call:>11}"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="package to serve and run (default: the shipped model)")
    ap.add_argument("--url", default=None, help="HOST:PORT of a running lsa-edge serve (default: start one)")
    ap.add_argument("--metrics", default=None, help="its metrics URL (with --url; default: port + 2)")
    ap.add_argument("--streams", default="1,4,16", help="stream counts (default 1,4,16)")
    ap.add_argument(
        "--modes", default="remote,faces,frames,local", help="remote, faces, frames, local (default: all)"
    )
    ap.add_argument("--faces", type=int, default=1, help="faces per demo frame (default 1)")
    ap.add_argument("--frames", type=int, default=200, help="frames per measurement over all streams")
    ap.add_argument("--repeats", type=int, default=3, help="measurements per row; medians (default 3)")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--queue-delay-us", type=int, default=2000)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows and the machine as JSON")
    args = ap.parse_args()
    args.streams = [int(s) for s in args.streams.split(",")]
    args.modes = args.modes.split(",")

    from lsa_edge.cli import setup_logging

    setup_logging(0, True)
    proc = None
    if args.url:
        url = args.url
        host, port = url.rsplit(":", 1)
        metrics_url = args.metrics or f"http://{host}:{int(port) + 2}/metrics"
    else:
        proc, url, metrics_url, _ = start_server(args)
    try:
        rows = measure(args, url, metrics_url)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    print(table(rows))
    machine = f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs, Python {platform.python_version()}"
    print(f"machine: {machine}; server and clients on this machine; medians over {args.repeats} repeats")
    if args.json:
        from lsa_edge.io import write_json_atomic

        args_doc = {k: v for k, v in vars(args).items() if k != "json"}
        write_json_atomic(args.json, {"machine": machine, "args": args_doc, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
