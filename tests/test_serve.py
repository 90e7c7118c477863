"""lsa-edge serve and the triton:// backend.

The parts that need no server run everywhere: the address parser, the server's configuration, and the
remote backend's reconnection, refusal and batching logic against a stand-in Triton client. The real round
trip — NVIDIA's tritonserver (nvidia-pytriton) started on free ports, both models called with tritonclient,
``Pipeline(backend="triton://...")`` against the local pipeline, SIGTERM — needs the serve extra and a Python
with a shared libpython (Triton's Python backend embeds it); elsewhere it skips saying so, and
``.ci/run``'s serve stage runs it with LSA_EDGE_SERVE_REQUIRED=1, where a skip is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from lsa_edge.backends import triton as remote
from lsa_edge.backends.triton import RemoteUnavailableError, TritonBackend, parse_address
from lsa_edge.errors import ConfigError
from lsa_edge.package import ModelPackage

# ------------------------------------------------------------------------------------------- addresses


def test_addresses_parse_with_defaults_and_options():
    a = parse_address("triton://gpu-server")
    assert (a.host, a.port, a.model, a.max_reconnects) == ("gpu-server", 8000, "lsa_edge_attributes", None)
    b = parse_address("triton://10.0.0.5:9000/other?timeout=2.5&max_reconnects=3&reconnect_delay=0.1")
    assert (b.url, b.model, b.timeout, b.max_reconnects, b.reconnect_delay) == (
        "10.0.0.5:9000",
        "other",
        2.5,
        3,
        0.1,
    )
    assert str(b) == "triton://10.0.0.5:9000/other"


@pytest.mark.parametrize(
    "bad, words",
    [
        ("http://host:8000", "triton://HOST"),
        ("triton://:8000", "names no host"),
        ("triton://host:99999", "port"),
        ("triton://host/a/b", "one model name"),
        ("triton://host?retries=3", "unknown option 'retries'"),
        ("triton://host?timeout=soon", "not a number"),
        ("triton://host?timeout=0", "must be positive"),
    ],
)
def test_bad_addresses_say_what_is_wrong(bad, words):
    with pytest.raises(ConfigError, match=words):
        parse_address(bad)


def test_pipeline_and_cli_check_the_address_before_opening_anything(tmp_path):
    from lsa_edge import Pipeline
    from lsa_edge.cli import main

    with pytest.raises(ConfigError, match="unknown option"):
        Pipeline(backend="triton://host?colour=red")
    with pytest.raises(ConfigError, match="triton://HOST:PORT"):
        Pipeline(backend="trtion://host")
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--source", "demo:1", "--backend", "triton://host:0x"])
    assert exit_info.value.code == 2


# ------------------------------------------------------------------------------ the backend, stand-in client


class _Refused(ConnectionRefusedError):
    pass


class _ServerError(Exception):
    """tritonclient's InferenceServerException: a status and a message method."""

    def __init__(self, msg, status="400"):
        super().__init__(msg)
        self._msg, self._status = msg, status

    def message(self):
        return self._msg

    def status(self):
        return self._status


def _fake_http(card, *, down=0, model_shape=None, card_doc="same", infer_error=None, output="probabilities"):
    """A tritonclient.http stand-in: the first ``down`` calls are refused, then a server with the attribute
    model (shape from the card unless ``model_shape``) and a card model answering ``card_doc``."""
    state = SimpleNamespace(calls=0, down=down, infers=[], threads=[])
    h, w = card.preprocessing.input_size
    shape = model_shape or [-1, 3, h, w]

    class Input:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype, self.data = name, shape, dtype, None

        def set_data_from_numpy(self, x, binary_data=True):
            self.data = x

    class Client:
        def __init__(self, url, connection_timeout=None, network_timeout=None):
            self.url = url
            self.thread = threading.get_ident()
            state.threads.append(self.thread)

        def _tick(self):
            state.calls += 1
            if state.down > 0:
                state.down -= 1
                raise _Refused(111, "Connection refused")

        def is_model_ready(self, name):
            self._tick()
            return name == "lsa_edge_attributes" or (name == "lsa_edge_card" and card_doc is not None)

        def get_model_repository_index(self):
            return [{"name": "lsa_edge_attributes", "state": "READY"}]

        def get_model_metadata(self, name):
            self._tick()
            return {
                "inputs": [{"name": "faces", "shape": shape}],
                "outputs": [{"name": output, "shape": [-1, 40]}],
            }

        def get_model_config(self, name):
            return {"max_batch_size": 8}

        def infer(self, model, inputs, outputs=None, **kw):
            assert threading.get_ident() == self.thread, "a gevent client used from another thread"
            self._tick()
            x = inputs[0].data
            if model == "lsa_edge_card":
                doc = card.to_json() if card_doc == "same" else card_doc
                return SimpleNamespace(as_numpy=lambda name: np.array([doc.encode()], dtype=object))
            if infer_error is not None:
                raise infer_error
            state.infers.append(len(x))
            assert outputs == [output]
            return SimpleNamespace(as_numpy=lambda name: np.tile(x.mean(axis=(1, 2, 3))[:, None], (1, 40)))

        def close(self):
            pass

    module = SimpleNamespace(
        InferenceServerClient=Client,
        InferInput=Input,
        InferRequestedOutput=lambda name, binary_data=True: name,
        InferenceServerException=_ServerError,
    )
    return module, state


@pytest.fixture
def card():
    return ModelPackage.open(None).card


def _backend(monkeypatch, card, address="triton://h:1?reconnect_delay=0.01&reconnect_max_delay=0.02", **fake):
    module, state = _fake_http(card, **fake)
    monkeypatch.setattr(remote, "require", lambda name, feature="": module)
    return TritonBackend(address, card=card), state


def test_faces_go_in_one_request_per_max_batch_and_come_back_in_order(monkeypatch, card):
    backend, state = _backend(monkeypatch, card)
    h, w = card.preprocessing.input_size
    faces = np.random.default_rng(0).random((11, 3, h, w), dtype=np.float32)
    probs = backend.predict(faces)
    assert probs.shape == (11, 40) and probs.dtype == np.float32
    assert np.allclose(probs[:, 0], faces.mean(axis=(1, 2, 3)))
    assert state.infers == [8, 3]  # the server's max_batch_size splits the frame's faces
    assert backend.max_batch == 8 and backend.input_shape == (None, 3, h, w)
    assert "Triton at h:1" in backend.describe()
    backend.close()
    backend.close()
    with pytest.raises(ConfigError, match="closed"):
        backend.predict(faces)


def test_a_repository_from_lsa_edge_export_keeps_the_onnx_output_name(monkeypatch, card):
    backend, state = _backend(monkeypatch, card, output="probs", card_doc=None)
    h, w = card.preprocessing.input_size
    assert backend.predict(np.zeros((2, 3, h, w), np.float32)).shape == (2, 40) and state.infers == [2]


def test_each_thread_has_its_own_client(monkeypatch, card):
    """tritonclient's HTTP client belongs to the thread that made it; a Pipeline is called from many."""
    backend, state = _backend(monkeypatch, card)
    h, w = card.preprocessing.input_size
    faces = np.zeros((1, 3, h, w), np.float32)
    threads = [threading.Thread(target=lambda: [backend.predict(faces) for _ in range(3)]) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(state.infers) == 9 and len(state.threads) == 4  # clients: the opening thread and three more
    backend.close()


def test_a_server_not_up_yet_is_waited_for_and_the_gap_reported(monkeypatch, card, caplog):
    backend, state = _backend(monkeypatch, card, down=3)
    kinds = [k for _, k, _ in backend.events]
    assert kinds == ["lost", "reconnecting", "reconnecting", "reconnecting", "reconnected"]
    h, w = card.preprocessing.input_size
    state.down = 2  # the server drops out between two frames: the frame waits, then goes through
    out = backend.predict(np.zeros((2, 3, h, w), np.float32))
    assert out.shape == (2, 40)
    assert [k for _, k, _ in backend.events][-4:] == ["lost", "reconnecting", "reconnecting", "reconnected"]
    assert "reconnected" in caplog.text


def test_a_server_that_stays_away_is_given_up_after_max_reconnects(monkeypatch, card):
    address = "triton://h:1?reconnect_delay=0.01&max_reconnects=2"
    with pytest.raises(
        RemoteUnavailableError, match=r"did not answer after 2 reconnection attempts.*lsa-edge serve"
    ):
        _backend(monkeypatch, card, address=address, down=100)


def test_an_error_the_server_answers_with_is_not_retried(monkeypatch, card):
    backend, _ = _backend(monkeypatch, card, infer_error=_ServerError("unexpected shape for input 'faces'"))
    h, w = card.preprocessing.input_size
    with pytest.raises(ConfigError, match="refused the infer request: unexpected shape"):
        backend.predict(np.zeros((1, 3, h, w), np.float32))
    assert [k for _, k, _ in backend.events] == []


def test_a_server_model_of_another_size_or_card_is_refused(monkeypatch, card):
    with pytest.raises(ConfigError, match=r"takes .*the local model takes"):
        _backend(monkeypatch, card, model_shape=[-1, 3, 64, 64])
    other = card.with_updates(weights_sha256="0" * 64, name="someone-else").to_json()
    with pytest.raises(ConfigError, match="serves another model \\(someone-else"):
        _backend(monkeypatch, card, card_doc=other)
    backend, _ = _backend(monkeypatch, card, card_doc=None)  # a plain Triton repository: shapes only
    assert backend.num_outputs == 40


def test_pipeline_shares_an_open_backend_without_closing_it(monkeypatch, card):
    from lsa_edge import Pipeline
    from lsa_edge.demo import scene

    backend, state = _backend(monkeypatch, card)
    with Pipeline(backend=backend, tracking=False) as pipe:
        result = pipe.predict(scene(2))
    assert len(result.faces) == 2 and state.infers == [2]
    assert backend._handle() is not None  # still open: its owner closes it
    backend.close()


# ---------------------------------------------------------------------------------------- server config


def test_serve_config_is_checked():
    from lsa_edge.serve import ServeConfig

    with pytest.raises(ConfigError, match="must differ"):
        ServeConfig(http_port=9000, grpc_port=9000)
    with pytest.raises(ConfigError, match="max_batch"):
        ServeConfig(max_batch=0)
    with pytest.raises(ConfigError, match="http_port"):
        ServeConfig(http_port=70000)


def test_preferred_batch_sizes_come_from_the_package_profile():
    from lsa_edge.serve import preferred_batch_sizes

    package = ModelPackage.open(None)  # the shipped package's profile: 1, 8, 16 faces
    assert preferred_batch_sizes(package, 32) == [8, 16, 32]
    assert preferred_batch_sizes(package, 8) == [8]


# ------------------------------------------------------------------------------------ the real server


def _serve_skip_reason() -> str | None:
    try:
        import pytriton  # noqa: F401
        import tritonclient.http  # noqa: F401
    except ImportError as err:
        return f"the serve extra is not installed ({err}); pip install -e '.[serve]'"
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return (
            f"this Python ({sys.executable}) has no shared libpython, which Triton's Python backend embeds; "
            "use Debian/Ubuntu's system python3 (see README, 'Many cameras')"
        )
    return None


def _need_server():
    reason = _serve_skip_reason()
    if reason is not None:
        if os.environ.get("LSA_EDGE_SERVE_REQUIRED"):
            pytest.fail(reason + " (LSA_EDGE_SERVE_REQUIRED is set)")
        pytest.skip(reason)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def server():
    _need_server()
    from lsa_edge.serve import ModelServer, ServeConfig

    http, grpc, metrics = _free_ports(3)
    cfg = ServeConfig(
        http_port=http,
        grpc_port=grpc,
        metrics_port=metrics,
        address="127.0.0.1",
        max_batch=16,
        queue_delay_us=20_000,
    )
    with ModelServer(None, cfg) as srv:
        yield srv, http


def test_the_real_server_answers_both_models_like_the_local_pipeline(server):
    import tritonclient.http as client_lib

    from lsa_edge import Pipeline
    from lsa_edge.demo import scene

    _, port = server
    client = client_lib.InferenceServerClient(f"127.0.0.1:{port}")
    assert (
        client.is_server_ready()
        and client.is_model_ready("lsa_edge")
        and client.is_model_ready("lsa_edge_attributes")
    )
    frame = scene(3)
    with Pipeline(tracking=False) as local:
        expected = local.predict(frame)
        h, w = local.card.preprocessing.input_size
        faces = np.random.default_rng(1).standard_normal((5, 3, h, w)).astype(np.float32)
        expected_probs = local.backend.predict(faces)

    x = client_lib.InferInput("faces", list(faces.shape), "FP32")
    x.set_data_from_numpy(faces)
    probs = client.infer("lsa_edge_attributes", [x]).as_numpy("probabilities")
    assert probs.shape == (5, 40) and np.allclose(probs, expected_probs, atol=1e-5)

    f = client_lib.InferInput("frame", list(frame.shape), "UINT8")
    f.set_data_from_numpy(frame)
    doc = json.loads(client.infer("lsa_edge", [f]).as_numpy("faces")[0])
    assert [face["labels"] for face in doc["faces"]] == [list(face.labels) for face in expected.faces]
    assert np.allclose(
        [face["box"] for face in doc["faces"]], [face.box for face in expected.faces], atol=0.1
    )
    assert all(face["track_id"] == -1 for face in doc["faces"])

    tracked = [client.infer("lsa_edge", [f], parameters={"stream": "lobby"}) for _ in range(2)]
    docs = [json.loads(r.as_numpy("faces")[0]) for r in tracked]
    assert docs[1]["stream"] == "lobby" and [f_["track_id"] for f_ in docs[1]["faces"]] == [1, 2, 3]

    config = client.get_model_config("lsa_edge_attributes")
    assert config["max_batch_size"] == 16 and config["dynamic_batching"]["preferred_batch_size"] == [8, 16]
    client.close()


def test_dynamic_batching_joins_the_requests_of_many_clients(server):
    """Eight clients sending one face at a time: Triton's batcher hands the model several at once."""
    import tritonclient.http as client_lib

    srv, port = server
    h, w = srv.package.card.preprocessing.input_size
    face = np.zeros((1, 3, h, w), np.float32)
    start, errors = len(srv.batches), []

    def client():
        try:
            c = client_lib.InferenceServerClient(f"127.0.0.1:{port}")
            x = client_lib.InferInput("faces", [1, 3, h, w], "FP32")
            x.set_data_from_numpy(face)
            for _ in range(3):
                assert c.infer("lsa_edge_attributes", [x]).as_numpy("probabilities").shape == (1, 40)
            c.close()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    formed = srv.batches[start:]
    assert sum(formed) == 24 and max(formed) > 1, formed


def test_pipeline_with_a_triton_backend_matches_the_local_one(server):
    from lsa_edge import Pipeline
    from lsa_edge.demo import scene

    _, port = server
    frame = scene(2)
    with Pipeline(tracking=False) as local, Pipeline(
        backend=f"triton://127.0.0.1:{port}", tracking=False
    ) as far:
        a, b = local.predict(frame), far.predict(frame)
        assert "Triton at 127.0.0.1" in far.describe()
    assert [f.labels for f in a.faces] == [f.labels for f in b.faces]
    for fa, fb in zip(a.faces, b.faces):
        assert np.allclose(list(fa.attributes.values()), list(fb.attributes.values()), atol=1e-5)


def test_lsa_edge_serve_stops_cleanly_on_sigterm(tmp_path):
    _need_server()
    http, grpc, metrics = _free_ports(3)
    cmd = [sys.executable, "-m", "lsa_edge", "serve", "--address", "127.0.0.1"]
    cmd += ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while "Ctrl-C or SIGTERM stops" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
            metrics_text = _get(f"http://127.0.0.1:{metrics}/metrics")
            assert "nv_inference_request_success" in metrics_text
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert code == 143, text[-3000:]
    assert "SIGTERM: stopping Triton" in text and "Traceback" not in text


def _get(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_a_connection_closed_mid_request_is_a_lost_server_not_a_crash(monkeypatch, card):
    """After a server restart the pooled keep-alive socket is stale: geventhttpclient raises an
    http.client.HTTPException (not an OSError) for the POST, which must reconnect like a refusal."""
    from http.client import HTTPException

    backend, _ = _backend(monkeypatch, card)
    h, w = card.preprocessing.input_size
    original, failures = backend._client, [HTTPException("connection closed")]

    def flaky():
        client = original()
        if failures:
            err = failures.pop()

            def infer(*a, **k):
                raise err

            client.infer = infer
        return client

    monkeypatch.setattr(backend, "_client", flaky)
    assert backend.predict(np.zeros((1, 3, h, w), np.float32)).shape == (1, 40)
    assert [k for _, k, _ in backend.events][-3:] == ["lost", "reconnecting", "reconnected"]


def test_backoff_doubles_to_its_cap_and_never_overflows():
    from lsa_edge.backends.triton import backoff

    assert [backoff(i, 0.5, 10.0) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert backoff(5000, 0.5, 10.0) == 10.0  # a server away for days


def test_a_model_the_server_does_not_have_is_an_error_at_once(monkeypatch, card):
    with pytest.raises(ConfigError, match=r"has no model 'lsa_edge_atributes'.*lsa_edge_attributes"):
        _backend(monkeypatch, card, address="triton://h:1/lsa_edge_atributes")
