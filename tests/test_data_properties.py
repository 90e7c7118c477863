"""Property tests: arbitrary and mutated attribute, partition, identity, CSV and LFWA .mat files either load
into a consistent FaceDataset or raise the project's own error with a message — never another exception
(which the CLI would report as an internal bug). Bounded by the "lsa-edge" profile in conftest.py."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

import numpy as np
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lsa_edge import ATTRIBUTES, LsaEdgeError
from lsa_edge.data import FaceDataset, load_dataset

_count = itertools.count()

# A small pool so duplicates and partition/attribute overlaps happen often, plus arbitrary text.
IDS = st.one_of(
    st.sampled_from(["000001.jpg", "000002.jpg", "000003.jpg", "A/A_0001.jpg", "ü_ß.jpg", "x"]),
    st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=8),
    st.text(max_size=4),  # anything: whitespace, commas, quotes, NUL
)
# Ids that are one whitespace-free word (CelebA's rows are split on whitespace); byte mutations and the
# partition entries still bring the others.
WORD_IDS = IDS.filter(lambda s: s.split() == [s])
ODD_VALUES = [
    "2",
    "-2",
    "0.5",
    "1.0",
    "-0",
    "nan",
    "inf",
    "1e999",
    "300",
    "-129",
    "٣",
    "²",
    "yes",
    "",
    "+1",
    "1_0",
]
VALUE = st.one_of(st.sampled_from(["-1", "0", "1"]), st.sampled_from(ODD_VALUES), st.text(max_size=4))


@st.composite
def value_rows(draw, n: int = 40) -> list[str]:
    """40 values in one encoding, sometimes with a few odd tokens, sometimes the wrong length."""
    enc = draw(st.sampled_from([("-1", "1"), ("0", "1"), ("-1", "0", "1")]))
    vals = draw(st.lists(st.sampled_from(enc), min_size=n, max_size=n))
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):
        vals[draw(st.integers(0, n - 1))] = draw(VALUE)
    if draw(st.sampled_from(["keep"] * 9 + ["resize"])) == "resize":  # hypothesis favours the first
        vals = vals[: draw(st.integers(0, n + 2))] + draw(st.lists(VALUE, max_size=2))
    return vals


@st.composite
def attribute_names(draw) -> list[str]:
    names = list(draw(st.permutations(ATTRIBUTES)))
    how = draw(st.sampled_from(["keep"] * 8 + ["drop", "rename"]))
    if how == "drop":
        del names[draw(st.integers(0, 39))]
    elif how == "rename":
        names[draw(st.integers(0, 39))] = draw(st.sampled_from([*ATTRIBUTES, "Gender", "", "male"]))
    return names


def fresh(factory) -> Path:
    return factory.mktemp(f"p{next(_count)}", numbered=True)


def check_loads(root: Path, fmt: str | None = None) -> FaceDataset | None:
    """load_dataset either returns a consistent data set or raises LsaEdgeError with a message."""
    try:
        ds = load_dataset(root, fmt)
    except LsaEdgeError as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        event(f"{type(err).__name__}: {str(err).split(': ')[1][:30] if ': ' in str(err) else ''}")
        return None
    event("loaded")
    assert ds.labels.shape == (len(ds), len(ATTRIBUTES)) and ds.labels.dtype == np.uint8
    assert set(np.unique(ds.labels).tolist()) <= {0, 1}
    assert set(np.unique(ds.partition).tolist()) <= {-1, 0, 1, 2}
    assert len(set(ds.image_ids)) == len(ds), "duplicate image ids were accepted"
    return ds


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """The bytes unchanged, truncated, with a byte replaced, or with random bytes inserted."""
    how = draw(st.sampled_from(["keep"] * 7 + ["truncate", "replace", "insert"]))
    if how == "keep" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if how == "truncate":
        return data[:at]
    if how == "replace":
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data[:at] + draw(st.binary(min_size=1, max_size=6)) + data[at:]


# ---------------------------------------------------------------------------------------------- CelebA
@st.composite
def celeba_files(draw) -> dict[str, bytes]:
    sep = draw(st.sampled_from([" ", "  ", "\t"]))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    rows = draw(st.lists(st.tuples(WORD_IDS, value_rows()), min_size=1, max_size=5))
    count = draw(st.one_of(st.just(str(len(rows))), st.sampled_from(["", "x", "99", "-1", "1 2"])))
    lines = [count, sep.join(draw(attribute_names())), *(sep.join([i, *v]) for i, v in rows)]
    files = {"list_attr_celeba.txt": draw(mutated(eol.join(lines).encode()))}
    ids = [i for i, _ in rows] or ["000001.jpg"]
    side = st.lists(
        st.tuples(st.one_of(st.sampled_from(ids), IDS), st.sampled_from(["0", "1", "2", "3", "x"]))
    )
    if draw(st.booleans()):
        entries = draw(side)
        files["list_eval_partition.txt"] = draw(mutated("\n".join(" ".join(e) for e in entries).encode()))
    if draw(st.booleans()):
        entries = draw(side)
        files["identity_CelebA.txt"] = "\n".join(" ".join(e) for e in entries).encode()
    return files


def _celeba(*rows: str, partition: str | None = None) -> dict[str, bytes]:
    files = {"list_attr_celeba.txt": "\n".join([str(len(rows)), " ".join(ATTRIBUTES), *rows]).encode()}
    if partition is not None:
        files["list_eval_partition.txt"] = partition.encode()
    return files


@given(files=celeba_files())
@example(files=_celeba("a.jpg " + " ".join(["300"] * 40)))  # int8 overflow: OverflowError before
@example(files=_celeba("a.jpg " + " ".join(["1"] * 40), "a.jpg " + " ".join(["-1"] * 40)))  # duplicate
@example(files=_celeba("a.jpg " + " ".join(["²"] * 40)))  # str.isdigit() but not int()
@example(files={"list_attr_celeba.txt": b"\xff\xfe\x00\x01"})  # not text
@example(files=_celeba("a.jpg " + " ".join(["1"] * 40), partition="a.jpg 1\nb.jpg 9\n"))  # orphan, bad code
def test_celeba_files_load_or_raise_our_error(files, tmp_path_factory):
    root = fresh(tmp_path_factory)
    (root / "img_align_celeba").mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    check_loads(root)


# ------------------------------------------------------------------------------------------------- CSV
def _csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode()


@st.composite
def csv_files(draw) -> dict[str, bytes]:
    first = draw(st.sampled_from(["image_id"] * 8 + ["file", ""]))
    header = [first, *draw(attribute_names())]
    rows = draw(st.lists(st.tuples(IDS, value_rows()), max_size=5))
    data = _csv_bytes([header, *([i, *v] for i, v in rows)])
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a spreadsheet's byte-order mark
    files = {"attributes.csv": draw(mutated(data))}
    ids = [i for i, _ in rows] or ["x"]
    for side in ("partition.csv", "identity.csv"):
        if draw(st.booleans()):
            head = draw(st.sampled_from([[["image_id", side[:-4]]], []]))
            entries = draw(
                st.lists(
                    st.lists(
                        st.one_of(st.sampled_from(ids), IDS, st.sampled_from(["0", "1", "2", "9", ""])),
                        min_size=1,
                        max_size=3,
                    ),
                    max_size=5,
                )
            )
            files[side] = draw(mutated(_csv_bytes(head + entries)))
    return files


def _csv(*rows: str, **side: str) -> dict[str, bytes]:
    header = "image_id," + ",".join(ATTRIBUTES)
    files = {"attributes.csv": "\n".join([header, *rows]).encode()}
    files.update({f"{k}.csv": v.encode() for k, v in side.items()})
    return files


ONES = ",".join(["1"] * 40)


@given(files=csv_files())
@example(files=_csv("a.jpg," + ONES, partition="a.jpg\n"))  # 1-field first line naming an image: IndexError
@example(files=_csv("a.jpg," + ONES, identity="a.jpg\n"))
@example(files=_csv("a.jpg," + ONES + ",1"))  # ragged row: numpy's "inhomogeneous shape"
@example(files=_csv("a.jpg," + ONES, "a.jpg," + ONES))  # duplicate id
@example(files=_csv("a.jpg," + ",".join(["nan"] * 40)))
@example(files={"attributes.csv": b"image_id\x00,x\n"})  # NUL byte
@example(files={"attributes.csv": b"image_id," + b'"' + b"x" * 200_000 + b'"\n'})  # over csv's field limit
def test_csv_files_load_or_raise_our_error(files, tmp_path_factory):
    root = fresh(tmp_path_factory)
    (root / "images").mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)
    check_loads(root)


# -------------------------------------------------------------------------------------------- LFWA .mat
def _cell(strings) -> np.ndarray:
    out = np.empty((1, len(strings)), dtype=object)
    for k, s in enumerate(strings):
        out[0, k] = s
    return out


CELL_ITEM = st.one_of(
    IDS,
    st.integers(-5, 5),
    st.just(np.zeros((0,))),
    st.just(np.array(["a", "b"])),
    st.floats(allow_nan=True),
)
NUMERIC = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int8, np.int64, np.float32, np.float64, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)


@st.composite
def lfwa_vars(draw) -> dict[str, object]:
    n = draw(st.integers(0, 4))
    names = draw(st.lists(IDS, min_size=n, max_size=n))
    variables: dict[str, object] = {
        "AttrName": _cell(draw(attribute_names())),
        "name": _cell(names) if names else np.zeros((1, 0), dtype=object),
        "label": np.asarray(
            draw(
                st.lists(
                    st.lists(st.sampled_from([-1, 0, 1]), min_size=40, max_size=40), min_size=n, max_size=n
                )
            )
            or np.zeros((0, 40)),
            dtype=draw(st.sampled_from([np.int8, np.int16, np.float64])),
        ),
    }
    for key in ("AttrName", "name", "label"):  # sometimes replace or drop one variable
        how = draw(st.sampled_from(["keep"] * 9 + ["drop", "numeric", "text", "cell"]))
        if how == "drop":
            del variables[key]
        elif how == "numeric":
            variables[key] = draw(NUMERIC)
        elif how == "text":
            variables[key] = draw(st.text(max_size=5))
        elif how == "cell":
            variables[key] = _cell(draw(st.lists(CELL_ITEM, min_size=1, max_size=3)))
    return variables


INDICES = st.one_of(
    hnp.arrays(
        np.float64,
        st.tuples(st.just(1), st.integers(0, 5)),
        elements=st.one_of(st.floats(-2, 7), st.just(float("nan"))),
    ),
    hnp.arrays(np.int64, st.tuples(st.integers(0, 5), st.just(1)), elements=st.integers(-2, 7)),
    NUMERIC,
    st.just("12"),  # a char array where numbers belong
)


def _savemat(path: Path, variables: dict) -> bool:
    sio = pytest.importorskip("scipy.io")
    try:
        sio.savemat(path, variables)
    except Exception:  # scipy cannot write every generated value; those are not inputs
        return False
    return True


@settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
    ]
)
@given(
    variables=lfwa_vars(),
    split=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["indices_img_train", "indices_img_test", "other"]), INDICES, max_size=3
        ),
    ),
    data=st.data(),
)
def test_lfwa_mat_files_load_or_raise_our_error(variables, split, data, tmp_path_factory):
    root = fresh(tmp_path_factory)
    (root / "images").mkdir()
    att = root / "lfw_att_40.mat"
    assume(_savemat(att, variables))
    att.write_bytes(data.draw(mutated(att.read_bytes())))
    if split is not None:
        assume(_savemat(root / "indices_train_test.mat", split))
    check_loads(root, "lfwa-mat")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a mat file at all",
        b"MATLAB 7.3 MAT-file, but not HDF5" + b"\x00" * 200,  # v7.3 header on a non-HDF5 body
        b"\x89HDF\r\n\x1a\n" + b"\x00" * 64,  # a truncated HDF5 signature
        b"MATLAB 5.0 MAT-file" + b" " * 97 + b"\x00\x01IM" + b"\xff" * 40,  # a v5 header, garbage after
    ],
)
def test_lfwa_non_mat_bytes_are_our_error(content, tmp_path):
    pytest.importorskip("scipy.io")
    (tmp_path / "images").mkdir()
    (tmp_path / "lfw_att_40.mat").write_bytes(content)
    with pytest.raises(LsaEdgeError, match=r"lfw_att_40\.mat"):
        load_dataset(tmp_path, format="lfwa-mat")


def test_lfwa_label_matrix_checks(tmp_path):
    """Regression examples from the property test: a transposed, 1-D, string or out-of-range label."""
    (tmp_path / "images").mkdir()
    good = {"AttrName": _cell(list(ATTRIBUTES)), "name": _cell(["A\\A_0001.jpg", "B\\B_0001.jpg"])}
    for label, says in (
        (np.zeros((40, 2), np.uint8), r"label must be a numeric 2×40 matrix.*shape \(40, 2\)"),
        (np.zeros(40), r"label must be a numeric 2×40 matrix"),
        ("abc", r"label must be a numeric 2×40 matrix"),
        (np.full((2, 40), 3.0), r"\(label row\):1: attribute values must be -1/1 or 0/1"),
    ):
        assert _savemat(tmp_path / "lfw_att_40.mat", {**good, "label": label})
        with pytest.raises(LsaEdgeError, match=says):
            load_dataset(tmp_path, format="lfwa-mat")
    bad_names = {**good, "name": _cell(["A\\A_0001.jpg", 5]), "label": np.zeros((2, 40))}
    assert _savemat(tmp_path / "lfw_att_40.mat", bad_names)
    with pytest.raises(LsaEdgeError, match=r"name must be a cell array of strings; entry 2"):
        load_dataset(tmp_path, format="lfwa-mat")


# ------------------------------------------------------------------------------ LFWA .mat v7.3 (HDF5)
def _v73_bytes(path: Path, names: list[str], label: np.ndarray, group_ref: bool = False) -> bytes:
    """A MATLAB -v7.3 label file as MATLAB writes it: HDF5, cells as references, arrays transposed."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def cell(key: str, strings: list[str]) -> None:
            ds = f.create_dataset(key, (1, len(strings)), dtype=h5py.ref_dtype)
            for k, s in enumerate(strings):
                c = refs.create_dataset(f"{key}{k}", data=np.array([[ord(ch)] for ch in s], dtype=np.uint16))
                c.attrs["MATLAB_class"] = np.bytes_("char")
                ds[0, k] = c.ref
            if group_ref and key == "name":
                ds[0, 0] = refs.ref  # a reference to a group, not a dataset

        cell("AttrName", list(ATTRIBUTES))
        cell("name", names)
        f.create_dataset("label", data=label.T)
    with path.open("r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    return path.read_bytes()


@given(data=st.data())
@example(data=None)  # the unmutated file loads
def test_lfwa_v73_files_load_or_raise_our_error(data, tmp_path_factory):
    root = fresh(tmp_path_factory)
    (root / "images").mkdir()
    path = root / "lfw_att_40.mat"
    good = _v73_bytes(path, ["A\\A_0001.jpg", "B\\B_0001.jpg"], np.zeros((2, 40), np.uint8))
    if data is None:
        assert check_loads(root, "lfwa-mat") is not None
        return
    mutated_bytes = data.draw(mutated(good[512:]))  # keep the 512-byte MATLAB header
    path.write_bytes(good[:512] + mutated_bytes)
    check_loads(root, "lfwa-mat")


def test_lfwa_v73_reference_to_a_group_is_our_error(tmp_path):
    # f[ref] is a Group: AttributeError ("... please report it") before
    (tmp_path / "images").mkdir()
    _v73_bytes(tmp_path / "lfw_att_40.mat", ["A\\A_0001.jpg"], np.zeros((1, 40)), group_ref=True)
    with pytest.raises(LsaEdgeError, match=r"lfw_att_40\.mat: cannot read this MATLAB v7\.3"):
        load_dataset(tmp_path, format="lfwa-mat")
