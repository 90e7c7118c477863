"""Duplicate image ids, mixed label encodings and partial side files, in every layout (synthetic folders:
the loaders read labels only, so the image folders may be empty)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from lsa_edge import ATTRIBUTES, DataError
from lsa_edge.data import load_dataset


def celeba(root: Path, rows: list[str], partition: str | None = None, identity: str | None = None) -> Path:
    """A CelebA-layout folder. rows: "<file> <40 values>" lines."""
    (root / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    text = "\n".join([str(len(rows)), " ".join(ATTRIBUTES), *rows]) + "\n"
    (root / "list_attr_celeba.txt").write_text(text)
    if partition is not None:
        (root / "list_eval_partition.txt").write_text(partition)
    if identity is not None:
        (root / "identity_CelebA.txt").write_text(identity)
    return root


def row(name: str, values: list[int] | int = 1, sep: str = " ") -> str:
    vals = values if isinstance(values, list) else [values] * len(ATTRIBUTES)
    return sep.join([name, *(str(v) for v in vals)])


def csv_folder(
    root: Path, rows: list[str], partition: str | None = None, identity: str | None = None
) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "attributes.csv").write_text("\n".join(["image_id," + ",".join(ATTRIBUTES), *rows]) + "\n")
    if partition is not None:
        (root / "partition.csv").write_text(partition)
    if identity is not None:
        (root / "identity.csv").write_text(identity)
    return root


# ------------------------------------------------------------------------------------------ duplicates
def test_csv_duplicate_ids_are_an_error_naming_them(tmp_path):
    rows = [row(f"{i}.jpg", 0, ",") for i in range(8)]
    rows += [row("3.jpg", 1, ","), row("5.jpg", 1, ","), row("3.jpg", 0, ",")]
    root = csv_folder(tmp_path, rows)
    with pytest.raises(DataError) as e:
        load_dataset(root)
    msg = str(e.value)
    # the file, how many, each duplicate with every line it is on, and what to do
    assert "attributes.csv" in msg and "2 image id(s) appear more than once (3 extra lines)" in msg
    assert "'3.jpg' on lines 5, 10, 12" in msg and "'5.jpg' on lines 7, 11" in msg
    assert "remove or merge the duplicate lines" in msg


def test_duplicate_message_shows_the_first_few_and_a_count(tmp_path):
    rows = [row(f"{i}.jpg", 0, ",") for i in range(9)] * 2
    with pytest.raises(DataError, match=r"9 image id\(s\).*'4\.jpg' on lines 6, 15 \(and 4 more\)"):
        load_dataset(csv_folder(tmp_path, rows))


def test_csv_duplicates_in_partition_and_identity(tmp_path):
    rows = [row("a.jpg", 0, ","), row("b.jpg", 1, ",")]
    root = csv_folder(tmp_path, rows, partition="image_id,partition\na.jpg,0\nb.jpg,2\na.jpg,2\n")
    with pytest.raises(DataError, match=r"partition.csv: 1 image id.*'a\.jpg' on lines 2, 4"):
        load_dataset(root)
    (root / "partition.csv").unlink()
    (root / "identity.csv").write_text("a.jpg,7\nb.jpg,8\nb.jpg,9\n")  # no header line
    with pytest.raises(DataError, match=r"identity.csv: 1 image id.*'b\.jpg' on lines 2, 3"):
        load_dataset(root)


def test_celeba_duplicates_in_attribute_partition_and_identity_files(tmp_path):
    rows = [row("000001.jpg", -1), row("000002.jpg"), "", row("000001.jpg")]  # blank line 5 still counts
    with pytest.raises(DataError, match=r"list_attr_celeba.txt: 1 image id.*'000001\.jpg' on lines 3, 6"):
        load_dataset(celeba(tmp_path / "a", rows))
    rows = [row("000001.jpg", -1), row("000002.jpg")]
    root = celeba(tmp_path / "b", rows, partition="000001.jpg 0\n000002.jpg 1\n000002.jpg 2\n")
    with pytest.raises(DataError, match=r"list_eval_partition.txt: 1 image id.*'000002\.jpg' on lines 2, 3"):
        load_dataset(root)
    root = celeba(
        tmp_path / "c",
        rows,
        partition="000001.jpg 0\n000002.jpg 1\n",
        identity="000001.jpg 5\n000001.jpg 6\n",
    )
    with pytest.raises(DataError, match=r"identity_CelebA.txt: 1 image id.*'000001\.jpg' on lines 1, 2"):
        load_dataset(root)


def test_lfwa_mat_duplicate_names_and_indices(tmp_path):
    sio = pytest.importorskip("scipy.io")
    (tmp_path / "images").mkdir()
    names = np.empty((1, 4), dtype=object)
    names[0, :] = ["A\\A_0001.jpg", "B\\B_0001.jpg", "A\\A_0001.jpg", "C\\C_0001.jpg"]
    attr = np.empty((1, 40), dtype=object)
    attr[0, :] = list(ATTRIBUTES)
    label = np.zeros((4, 40), np.uint8)
    sio.savemat(tmp_path / "lfw_att_40.mat", {"AttrName": attr, "name": names, "label": label})
    with pytest.raises(DataError, match=r"\(name\): 1 image id.*'A/A_0001\.jpg' on entries 1, 3"):
        load_dataset(tmp_path, format="lfwa-mat")
    names[0, 2] = "D\\D_0001.jpg"
    sio.savemat(tmp_path / "lfw_att_40.mat", {"AttrName": attr, "name": names, "label": label})
    sio.savemat(
        tmp_path / "indices_train_test.mat",
        {"indices_img_train": np.array([[1.0, 2.0]]), "indices_img_test": np.array([[2.0, 3.0, 4.0]])},
    )
    with pytest.raises(
        DataError,
        match=r"1 images are listed more than once in indices_img_test and "
        r"indices_img_train, e\.g\. 'B/B_0001\.jpg' \(1-based indices 2\)",
    ):
        load_dataset(tmp_path, format="lfwa-mat")
    sio.savemat(tmp_path / "indices_train_test.mat", {"indices_img_train": np.array([[1.0, 2.5]])})
    with pytest.raises(DataError, match=r"indices_img_train must hold whole numbers in 1\.\.4.*2\.5"):
        load_dataset(tmp_path, format="lfwa-mat")
    sio.savemat(tmp_path / "indices_train_test.mat", {"indices_img_train": np.array([[1.0, 2.0]])})
    ds = load_dataset(tmp_path, format="lfwa-mat")
    assert ds.partition.tolist() == [0, 0, -1, -1]


# -------------------------------------------------------------------------------- label values, warnings
def test_mixed_encodings_warn_with_counts_and_read_zero_as_negative(tmp_path, caplog):
    vals = [1] * 38 + [0, -1]
    rows = [row("a.jpg", -1), row("b.jpg", 1), row("c.jpg", vals)]
    with caplog.at_level(logging.WARNING, logger="lsa_edge"):
        ds = load_dataset(celeba(tmp_path, rows))
    assert ds.labels[2].tolist() == [1] * 38 + [0, 0] and ds.labels[0].sum() == 0
    msg = caplog.text
    assert (
        "mix the -1/1 and 0/1 encodings: 41 values are -1 (in 2 rows), 1 are 0 (in 1 rows, first on line 5)"
        in msg
    )
    assert "78 are 1" in msg and "Use one encoding" in msg


@pytest.mark.parametrize(
    "value, shown",
    [("2", "is 2 there"), ("0.5", "is 0.5 there"), ("nan", "is nan there"), ("1e999", "is inf there")],
)
def test_values_that_are_neither_encoding_are_an_error(tmp_path, value, shown):
    vals: list = [1] * 40
    vals[ATTRIBUTES.index("Male")] = value
    rows = [row("a.jpg", 0, ","), row("b.jpg", vals, ",")]
    with pytest.raises(
        DataError, match=rf"attributes.csv:3: attribute values must be -1/1 or 0/1; Male {shown}"
    ):
        load_dataset(csv_folder(tmp_path, rows))


def test_celeba_value_out_of_int8_range_or_not_a_number(tmp_path):
    # np.asarray(["300"], dtype=np.int8) raised OverflowError ("... failed: OverflowError ... report it")
    vals: list = [1] * 40
    vals[0] = 300
    with pytest.raises(DataError, match=r"list_attr_celeba.txt:4: .*5_o_Clock_Shadow is 300 there"):
        load_dataset(celeba(tmp_path / "a", [row("a.jpg"), row("b.jpg", vals)]))
    vals[0] = "yes"
    with pytest.raises(DataError, match=r"list_attr_celeba.txt:4: value 1 is 'yes', not a number"):
        load_dataset(celeba(tmp_path / "b", [row("a.jpg"), row("b.jpg", vals)]))


def test_partition_and_identity_coverage_warnings(tmp_path, caplog):
    rows = [row(f"{i:06d}.jpg", -1) for i in range(1, 6)]
    partition = "".join(f"{i:06d}.jpg {i % 3}\n" for i in (1, 2, 3, 97, 98, 99))  # 4, 5 missing; 3 unknown
    identity = "000001.jpg 1\n000002.jpg 2\n000003.jpg 3\n000004.jpg 4\n000005.jpg 5\n000077.jpg 9\n"
    with caplog.at_level(logging.WARNING, logger="lsa_edge"):
        ds = load_dataset(celeba(tmp_path, rows, partition, identity))
    assert ds.partition.tolist() == [1, 2, 0, -1, -1]
    text = caplog.text
    assert (
        "list_eval_partition.txt: 3 of its 6 entries name images with no row in" in text
        and "'000097.jpg' (line 4), '000098.jpg' (line 5), '000099.jpg' (line 6)" in text
    )
    assert "2 of the 5 images in" in text and "have no partition entry and are in no split" in text
    assert "identity_CelebA.txt: 1 of its 6 entries" in text and "'000077.jpg' (line 6)" in text
    assert "have no identity entry" not in text


def test_csv_partition_orphans_warn(tmp_path, caplog):
    rows = [row("a.jpg", 0, ","), row("b.jpg", 1, ",")]
    root = csv_folder(tmp_path, rows, partition="image_id,partition\na.jpg,0\nzzz.jpg,2\n")
    with caplog.at_level(logging.WARNING, logger="lsa_edge"):
        ds = load_dataset(root)
    assert ds.partition.tolist() == [0, -1]
    assert "partition.csv: 1 of its 2 entries name images with no row" in caplog.text
    assert "'zzz.jpg' (line 3)" in caplog.text and "1 of the 2 images" in caplog.text


def test_clean_files_load_without_warnings(tmp_path, caplog):
    rows = [row("a.jpg", 0, ","), row("b.jpg", 1, ","), row("c.jpg", 1, ",") + ","]  # a trailing comma
    root = csv_folder(
        tmp_path, rows, partition="a.jpg,0\nb.jpg,1\nc.jpg,2\n", identity="a.jpg,x\nb.jpg,y\nc.jpg,z\n"
    )
    with caplog.at_level(logging.WARNING, logger="lsa_edge"):
        ds = load_dataset(root)
    assert not caplog.records, caplog.text
    assert ds.partition.tolist() == [0, 1, 2] and ds.identity.tolist() == ["x", "y", "z"]


def test_csv_rows_with_too_many_fields_or_empty_ids(tmp_path):
    rows = [row("a.jpg", 0, ","), row("b.jpg", 1, ",") + ",1"]
    with pytest.raises(DataError, match=r"attributes.csv:3: 42 fields, but the header has 41"):
        load_dataset(csv_folder(tmp_path / "a", rows))
    rows = [row("a.jpg", 0, ","), row(" ", 1, ",")]
    with pytest.raises(DataError, match=r"attributes.csv:3: the first field \(the image id\) is empty"):
        load_dataset(csv_folder(tmp_path / "b", rows))


def test_one_field_first_line_of_a_headerless_partition_csv(tmp_path):
    # the first line names an image but has no partition: IndexError before ("... please report it")
    root = csv_folder(tmp_path, [row("a.jpg", 0, ",")], partition="a.jpg\n")
    with pytest.raises(DataError, match=r"partition.csv:1: expected at least 2"):
        load_dataset(root)


# ------------------------------------------------------------------------------------------------- CLI
def _broken_csv_folder(root: Path) -> Path:
    return csv_folder(root, [row("a.jpg", 0, ","), row("b.jpg", 1, ","), row("a.jpg", 1, ",")])


def _one_clear_line(err: str) -> str:
    """The one ERROR line (INFO lines about the chosen backend may come before it)."""
    lines = [ln for ln in err.strip().splitlines() if "ERROR" in ln]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "please report it" not in err, err
    return lines[0]


def test_eval_on_a_broken_data_folder_is_one_clear_line(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from lsa_edge.cli import main

    data = _broken_csv_folder(tmp_path / "data")
    assert main(["eval", "--data", str(data)]) == 1
    line = _one_clear_line(capsys.readouterr().err)
    assert "attributes.csv: 1 image id(s) appear more than once" in line and "'a.jpg' on lines 2, 4" in line


def test_train_on_a_broken_data_folder_is_one_clear_line(tmp_path, capsys):
    pytest.importorskip("torch")
    from lsa_edge.cli import main

    root = celeba(tmp_path / "data", [row("000001.jpg"), row("000002.jpg", [7] * 40)])
    rc = main(
        ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--epochs", "1", "--device", "cpu"]
    )
    assert rc == 1
    line = _one_clear_line(capsys.readouterr().err)
    assert "list_attr_celeba.txt:4: attribute values must be -1/1 or 0/1; 5_o_Clock_Shadow is 7" in line
    assert not (tmp_path / "run" / "best.pt").exists()


@pytest.mark.parametrize("fmt", ["csv", "celeba", "lfwa-mat"])
def test_a_wrong_format_or_missing_folder_is_a_data_error(tmp_path, fmt):
    # --format csv on a folder without attributes.csv raised FileNotFoundError ("... please report it")
    root = celeba(tmp_path / "c", [row("000001.jpg")]) if fmt == "csv" else csv_folder(tmp_path / "c", [])
    with pytest.raises(DataError, match="not found"):
        load_dataset(root, format=fmt)
    with pytest.raises(DataError):
        load_dataset(tmp_path / "missing", format=fmt)


# --------------------------------------------------------------------------- damaged .mat (scipy crashes)
def _lfwa_mat_bytes(**extra) -> bytes:
    import io

    sio = pytest.importorskip("scipy.io")
    attr = np.empty((1, 40), dtype=object)
    attr[0, :] = list(ATTRIBUTES)
    names = np.empty((1, 2), dtype=object)
    names[0, :] = ["A\\A_0001.jpg", "B\\B_0001.jpg"]
    buf = io.BytesIO()
    sio.savemat(buf, {"AttrName": attr, "name": names, "label": np.zeros((2, 40), np.uint8), **extra})
    return buf.getvalue()


def _patch(data: bytes, pattern: bytes, offset: int, value: bytes) -> bytes:
    at = data.index(pattern) + offset
    return data[:at] + value + data[at + len(value) :]


@pytest.mark.parametrize(
    "damage, says",
    [
        # a tag's data type 16 (miUTF8) flipped to 222: scipy.io.loadmat died with SIGSEGV
        (
            lambda d: _patch(d, struct.pack("<II", 16, 16) + b"5_o_Clock_Shadow", 0, b"\xde"),
            "unknown data type 222",
        ),
        # the complex flag set on an int64 array without an imaginary part: SIGSEGV
        (lambda d: _patch(d, struct.pack("<IIII", 6, 8, 14, 0), 9, b"\x08"), "without its imaginary part"),
        # a 1×1 struct's dimensions flipped to 1×1493172225: scipy looped for minutes
        (
            lambda d: _patch(d, struct.pack("<IIIIIIII", 6, 8, 2, 0, 5, 8, 1, 1), 31, b"\x59"),
            r"a cell or struct array of 1x1493172225 entries",
        ),
        (lambda d: d[:100], "shorter than a MATLAB file header"),
        (lambda d: d[: len(d) - 20], "where only"),
    ],
)
def test_damaged_mat_files_are_a_data_error_not_a_crash(tmp_path, damage, says):
    good = _lfwa_mat_bytes(extra=np.arange(3, dtype=np.int64), s={"a": np.arange(2)})
    (tmp_path / "images").mkdir()
    (tmp_path / "lfw_att_40.mat").write_bytes(good)
    assert len(load_dataset(tmp_path, format="lfwa-mat")) == 2
    (tmp_path / "lfw_att_40.mat").write_bytes(damage(good))
    with pytest.raises(DataError, match=rf"lfw_att_40\.mat: (damaged MATLAB file: )?.*{says}"):
        load_dataset(tmp_path, format="lfwa-mat")
