"""``lsa-edge serve``: a model package behind a real Triton Inference Server (see :mod:`lsa_edge.serve`):
``lsa_edge`` (frames → faces JSON), ``lsa_edge_attributes`` (aligned faces → probabilities, dynamic
batching across clients) and ``lsa_edge_card``. Runs until SIGTERM or Ctrl-C, then stops Triton cleanly
(exit 143 / 130, as every long command)."""

from __future__ import annotations

import argparse
import logging
import threading

from ..package import BACKENDS

HELP = "serve a model from NVIDIA Triton (HTTP/gRPC/metrics) for many cameras: frames or aligned faces"
log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help=HELP,
        description=HELP
        + ". Needs the serve extra (pip install 'lsa-edge[serve]') and a Python with a shared "
        "libpython (Debian/Ubuntu's system python3). Clients: tritonclient, perf_analyzer, or lsa-edge run "
        "--backend triton://HOST:PORT (detection and tracking on the device, faces batched on the server).",
        epilog="Example: lsa-edge serve build/fp16 --max-batch 32 --queue-delay-us 2000",
    )
    p.add_argument(
        "model", nargs="?", default=None, help="build folder, .onnx, .engine or .pt (default: shipped)"
    )
    p.add_argument(
        "--http-port", type=int, default=8000, metavar="N", help="Triton's HTTP port (default 8000)"
    )
    p.add_argument(
        "--grpc-port", type=int, default=8001, metavar="N", help="Triton's gRPC port (default 8001)"
    )
    p.add_argument(
        "--metrics-port", type=int, default=8002, metavar="N", help="Prometheus metrics port (default 8002)"
    )
    p.add_argument(
        "--address",
        default="0.0.0.0",
        help="interface to listen on (default 0.0.0.0: all; 127.0.0.1: this host)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=32,
        metavar="N",
        help="most faces per attribute-model call (default 32)",
    )
    p.add_argument(
        "--queue-delay-us",
        type=int,
        default=2000,
        metavar="US",
        help="how long Triton may hold a request to form a larger batch (default 2000 µs)",
    )
    p.add_argument(
        "--instances", type=int, default=1, metavar="N", help="model copies answering at once (default 1)"
    )
    p.add_argument(
        "--max-streams",
        type=int,
        default=32,
        metavar="N",
        help="trackers kept for requests with a 'stream' parameter (default 32; the idlest is dropped)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="where the model runs in the server (default auto, as lsa-edge run)",
    )
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = its choice)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .._signals import GracefulStop, signal_name
    from ..serve import ATTRIBUTES_MODEL, FRAME_MODEL, ModelServer, ServeConfig

    config = ServeConfig(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        address=args.address,
        max_batch=args.max_batch,
        queue_delay_us=args.queue_delay_us,
        instances=args.instances,
        max_streams=args.max_streams,
        backend=args.backend,
        device=args.device,
        threads=args.threads,
    )
    stopped = threading.Event()
    with GracefulStop() as stop, ModelServer(args.model, config) as server:
        stop.add_callback(stopped.set)
        host = "localhost" if config.address in ("0.0.0.0", "::") else config.address
        log.info(
            "serving %s (%s) on http://%s:%d, grpc %d, metrics http://%s:%d/metrics — models %s, %s "
            "(max batch %d); Ctrl-C or SIGTERM stops",
            server.package.card.name,
            server.backend.describe(),
            host,
            config.http_port,
            config.grpc_port,
            host,
            config.metrics_port,
            FRAME_MODEL,
            ATTRIBUTES_MODEL,
            server.max_batch,
        )
        log.info(
            "devices connect with: lsa-edge run --source SOURCE --backend triton://%s:%d",
            host,
            config.http_port,
        )
        with stop.frames():
            while not stopped.wait(0.5):
                if not server.running:
                    log.error("Triton stopped on its own; see its log above")
                    return 1
        log.info("%s: stopping Triton (requests under way finish first)", signal_name(stop.signum or 0))
    return stop.exit_code
