"""Property tests of the source URI parser: any string, bytes or number either parses into a SourceSpec
whose name can be shown, or raises the project's own error with a message — never another exception."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis")

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from lsa_edge.errors import ConfigError, LsaEdgeError
from lsa_edge.sources._uri import KINDS, MAX_INDEX, SCHEMES, parse_uri, redact_url

SCHEME = st.one_of(
    st.sampled_from([*SCHEMES, "RTSP", "Csi", "ftp", "x+y.z-1", "s3"]),
    st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,6}", fullmatch=True),
)
PIECE = st.one_of(
    st.sampled_from(["", "0", "7", "/dev/video0", "host", "[::1]", "[abc", "u:p@h", ":", "localhost/", "~"]),
    st.text(max_size=12),
    st.integers(0, 10**30).map(str),
)
QUERY = st.one_of(
    st.just(""),
    st.builds(lambda q: "?" + q, st.text(max_size=12)),
    st.sampled_from(["?width=1920&height=1080", "?a", "?=&=", "?a=1&a=2", "?%zz=%ff", "?é=ü"]),
)


@st.composite
def uris(draw) -> str:
    host = draw(PIECE)
    port = draw(
        st.one_of(
            st.just(""), st.builds(lambda p: f":{p}", st.one_of(st.integers(-1, 10**6), st.text(max_size=3)))
        )
    )
    return f"{draw(SCHEME)}://{host}{port}{draw(PIECE)}{draw(QUERY)}"


SOURCES = st.one_of(
    uris(),
    st.text(),
    st.binary(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=2**14000, max_value=2**14001),  # more digits than str() converts
    st.integers(0, 2**70).map(str),
    st.integers(1, 6000).map(lambda n: "9" * n),
    st.from_regex(r"\s*[0-9²³٣]{1,12}\s*", fullmatch=True),  # digits other than ASCII
    st.sampled_from(
        ["~", "~/x.mp4", "~no_such_user_lsa/x.mp4", "a" * 5000, "x\x00y.jpg", "*.jpg", "imgs/[a"]
    ),
)


def _check(source) -> None:
    try:
        spec = parse_uri(source)
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return
    assert spec.kind in KINDS
    assert isinstance(spec.name, str) and isinstance(spec.live, bool)
    if spec.kind in ("camera", "csi"):
        assert isinstance(spec.target, int) and 0 <= spec.target <= MAX_INDEX
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in spec.options.items())


@given(source=SOURCES)
@example(source="rtsp://[abc/x")  # urlsplit: "Invalid IPv6 URL" (ValueError)
@example(source="rtsp://user:pw@cam:99999/live")  # .port: "Port out of range"
@example(source="http://cam:abc/x")  # .port: "Port could not be cast"
@example(source="²")  # str.isdigit() but int() refuses it
@example(source="csi://²")
@example(source="v4l2://³")
@example(source="9" * 5000)  # over Python's int() digit limit
@example(source=10**40)  # no C int
@example(source=2**14000)  # str(): "Exceeds the limit (4300 digits)" while writing the message
@example(source="~no_such_user_lsa/clip.mp4")  # pathlib: RuntimeError
@example(source="a" * 5000)  # stat(): File name too long (OSError)
@example(source="file://")
@example(source=np.int64(-3))
def test_parse_uri_parses_or_raises_our_error(source):
    _check(source)


@pytest.mark.parametrize(
    "bad, says",
    [
        ("rtsp://[abc/x", "bad stream URL"),
        ("rtsp://cam:99999/live", "Port out of range"),
        ("²", "not a video source|cannot|names no file|camera index"),
        ("9" * 5000, "camera index must be 0 or more and at most 2147483647"),
        (10**40, "camera index must be 0 or more and at most"),
        ("csi://²", "csi://N"),
        ("~no_such_user_lsa/clip.mp4", "no home directory for '~no_such_user_lsa'"),
        ("file://", "names no file"),
    ],
)
def test_uri_regressions_found_by_the_property_test(bad, says):
    try:
        spec = parse_uri(bad)
    except ConfigError as err:
        assert __import__("re").search(says, str(err)), err
    else:  # "²" is a legal file name: a video path, not a crash
        assert bad == "²" and spec.kind == "video"


def test_redact_url_never_raises_and_still_masks():
    assert redact_url("rtsp://admin:s3cret@cam:99999/live") == "rtsp://admin:***@cam:99999/live"
    assert redact_url("rtsp://admin:s3cret@[abc/live") == "rtsp://admin:***@[abc/live"
    assert "s3cret" not in parse_uri("rtsp://admin:s3cret@10.0.0.2:554/live").name


def test_long_paths_are_videos_not_crashes():
    spec = parse_uri("a" * 5000 + ".mp4")
    assert spec.kind == "video" and spec.target.endswith(".mp4")
    assert parse_uri("x\x00y.jpg").kind == "image"
