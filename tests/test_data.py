"""Loaders on the real data in ../shared/data (all three layouts) and bad inputs."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from _helpers import make_celeba_copy

from lsa_edge import ATTRIBUTES, ConfigError, DataError
from lsa_edge.data import (
    LFW_FRAME,
    carve_validation,
    detect_format,
    load_dataset,
    read_image,
    select_labelled,
)


def test_celeba_layout(celeba_dir):
    ds = load_dataset(celeba_dir)
    assert ds.layout == "celeba" and ds.aligned and ds.frame is None
    assert len(ds) == 10000
    assert ds.split_sizes() == {"train": 8041, "val": 979, "test": 980}
    assert ds.labels.shape == (10000, 40) and set(np.unique(ds.labels)) == {0, 1}
    # 000001.jpg: Arched_Eyebrows=1, Attractive=1, Male=-1 (from list_attr_celeba.txt)
    i = ds.image_ids.index("000001.jpg")
    assert ds.labels[i, ATTRIBUTES.index("Attractive")] == 1 and ds.labels[i, ATTRIBUTES.index("Male")] == 0
    # identity-disjoint splits
    ids = {s: set(ds.split(s).identity) for s in ("train", "val", "test")}
    assert not (ids["train"] & ids["test"]) and not (ids["train"] & ids["val"])
    img = read_image(ds.path(0))
    assert img is not None and img.shape == (109, 89, 3) and img.dtype == np.uint8


def test_csv_layout_lfwa(lfwa_dir):
    ds = load_dataset(lfwa_dir)
    assert ds.layout == "csv" and not ds.aligned and ds.frame == LFW_FRAME
    assert ds.split_sizes() == {"train": 6263, "val": 0, "test": 6880}
    assert ds.identity is not None and len(set(ds.identity)) == 5721
    assert not set(ds.split("train").identity) & set(ds.split("test").identity)


def test_lfwa_mat_layout_matches_csv(lfwa_dir):
    pytest.importorskip("scipy")  # MATLAB v7 (the train extra)
    pytest.importorskip("h5py")  # MATLAB v7.3
    mat = load_dataset(lfwa_dir / "raw", format="lfwa-mat")
    csv = load_dataset(lfwa_dir)
    assert detect_format(lfwa_dir / "raw") == "lfwa-mat"
    assert mat.image_ids == csv.image_ids
    assert np.array_equal(mat.labels, csv.labels)
    assert np.array_equal(mat.partition, csv.partition)  # v7.3 (HDF5) split file read through h5py
    assert mat.path(0).exists()


def test_full_celeba_nested_layout(celeba_dir, tmp_path):
    root = make_celeba_copy(celeba_dir, tmp_path / "CelebA", n=30, nested=True)
    ds = load_dataset(root)
    assert ds.layout == "celeba" and len(ds) == 30 and all(ds.path(i).exists() for i in range(len(ds)))
    assert set(ds.split_sizes().values()) == {10}


def test_csv_with_reordered_and_pm1_columns(tmp_path, celeba_dir):
    src = load_dataset(celeba_dir).subset(range(5))
    (tmp_path / "images").mkdir()
    order = list(reversed(range(40)))
    lines = ["image_id," + ",".join(ATTRIBUTES[k] for k in order)]
    for i in range(5):
        shutil.copy(src.path(i), tmp_path / "images" / src.image_ids[i])
        lines.append(src.image_ids[i] + "," + ",".join(str(2 * int(src.labels[i, k]) - 1) for k in order))
    (tmp_path / "attributes.csv").write_text("\n".join(lines) + "\n")
    ds = load_dataset(tmp_path)
    assert np.array_equal(ds.labels, src.labels)
    assert ds.frame is None and (ds.partition == -1).all()
    with pytest.raises(DataError, match="no 'train' split"):
        ds.split("train")


def test_wrong_attribute_names_are_reported(tmp_path):
    (tmp_path / "images").mkdir()
    names = list(ATTRIBUTES)
    names[20] = "Gender"
    (tmp_path / "attributes.csv").write_text(
        "image_id," + ",".join(names) + "\nx.jpg," + ",".join(["0"] * 40) + "\n"
    )
    with pytest.raises(DataError, match=r"unexpected 'Gender'.*missing 'Male'"):
        load_dataset(tmp_path)


def test_missing_folder_and_unknown_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match=r"cannot tell the layout.*--format"):
        load_dataset(tmp_path)


def test_corrupt_missing_and_odd_images(tmp_path, caplog):
    import cv2

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with caplog.at_level(logging.WARNING):
        assert read_image(bad) is None
        assert read_image(tmp_path / "missing.jpg") is None
    assert "bad.jpg" in caplog.text and "missing.jpg" in caplog.text
    gray16 = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 20
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (64, 48, 3) and img.dtype == np.uint8
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 2] = 255  # BGRA red
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert read_image(tmp_path / "rgba.png")[0, 0].tolist() == [255, 0, 0]


def test_selection_modes(celeba_dir):
    train = load_dataset(celeba_dir).split("train")
    s25 = select_labelled(train, select_rate=25)
    assert len(s25) == 322 and s25.image_ids[:2] == (train.image_ids[0], train.image_ids[25])
    f = select_labelled(train, fraction=0.1, seed=1)
    assert len(f) == 804 and f.image_ids != select_labelled(train, fraction=0.1, seed=2).image_ids
    assert f.image_ids == select_labelled(train, fraction=0.1, seed=1).image_ids
    assert len(select_labelled(train, count=100, seed=0)) == 100
    assert select_labelled(train) is train
    with pytest.raises(ConfigError, match="at most one"):
        select_labelled(train, select_rate=5, count=3)
    with pytest.raises(ConfigError):
        select_labelled(train, select_rate=0)


def test_empty_selection_is_a_clear_error(celeba_dir):
    empty = load_dataset(celeba_dir).split("train").subset([])
    with pytest.raises(DataError, match="picked no image"):
        select_labelled(empty, select_rate=5)


def test_carve_validation_is_identity_disjoint(lfwa_dir):
    ds = carve_validation(load_dataset(lfwa_dir), 0.1, seed=0)
    sizes = ds.split_sizes()
    assert sizes["val"] > 300 and sizes["train"] + sizes["val"] == 6263 and sizes["test"] == 6880
    assert not set(ds.split("val").identity) & set(ds.split("train").identity)


def test_lfwa_mat_v73_with_cell_arrays(lfwa_dir, tmp_path):
    """The same labels written the way MATLAB -v7.3 stores them (HDF5, cells as references, transposed)."""
    h5py = pytest.importorskip("h5py")
    sio = pytest.importorskip("scipy.io")

    src = sio.loadmat(lfwa_dir / "raw" / "lfw_att_40_7.1.mat")
    n = 50
    path = tmp_path / "lfw_att_40_v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def cell(name, strings):
            ds = f.create_dataset(
                name, (1, len(strings)), dtype=h5py.ref_dtype
            )  # MATLAB 1×K cell, stored K×1
            for k, s in enumerate(strings):
                c = refs.create_dataset(f"{name}{k}", data=np.array([[ord(ch)] for ch in s], dtype=np.uint16))
                c.attrs["MATLAB_class"] = np.bytes_("char")
                ds[0, k] = c.ref
            ds.attrs["MATLAB_class"] = np.bytes_("cell")

        cell("AttrName", [str(x[0]) for x in src["AttrName"].ravel()])
        cell("name", [str(x[0]) for x in src["name"].ravel()[:n]])
        f.create_dataset("label", data=src["label"][:n].T)  # column-major: stored 40×N
    with path.open("r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    (tmp_path / "images").symlink_to(lfwa_dir / "images")
    ds = load_dataset(tmp_path, format="lfwa-mat")
    ref = load_dataset(lfwa_dir).subset(range(n))
    assert ds.image_ids == ref.image_ids and np.array_equal(ds.labels, ref.labels)
    assert ds.path(0).exists()


def test_malformed_partition_and_binary_csv(tmp_path, celeba_dir):
    from _helpers import make_celeba_copy

    root = make_celeba_copy(celeba_dir, tmp_path / "c", n=6)
    (root / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(DataError, match="partition must be 0"):
        load_dataset(root)
    (root / "list_eval_partition.txt").write_text("000001.jpg\n")
    with pytest.raises(DataError, match=r"list_eval_partition.txt:1"):
        load_dataset(root)
    bad = tmp_path / "csv"
    (bad / "images").mkdir(parents=True)
    (bad / "attributes.csv").write_bytes(b"\xff\xfe\x00binary\x00\x81")
    with pytest.raises(DataError, match="not a readable CSV"):
        load_dataset(bad)


def test_to_rgb_uint8_accepts_common_frames_and_names_bad_ones():
    from lsa_edge.data.images import to_uint8_3ch

    assert to_uint8_3ch(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert to_uint8_3ch(np.full((4, 5, 1), 65535, np.uint16)).max() == 255
    assert to_uint8_3ch(np.ones((4, 5, 4), np.float32)).shape == (4, 5, 3)
    for bad, what in (
        (None, "numpy array"),
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((4, 5, 2), np.uint8), "shape"),
    ):
        with pytest.raises(ValueError, match=what):
            to_uint8_3ch(bad, "frame 7")


def test_csv_partition_without_header_and_with_bom(tmp_path, celeba_dir):
    src = load_dataset(celeba_dir).subset(range(3))
    (tmp_path / "images").mkdir()
    lines = ["image_id," + ",".join(ATTRIBUTES)]
    for i in range(3):
        shutil.copy(src.path(i), tmp_path / "images" / src.image_ids[i])
        lines.append(src.image_ids[i] + "," + ",".join(str(int(v)) for v in src.labels[i]))
    (tmp_path / "attributes.csv").write_bytes(
        b"\xef\xbb\xbf" + "\n".join(lines).encode() + b"\n"
    )  # Excel's BOM
    ids = src.image_ids
    (tmp_path / "partition.csv").write_text(f"{ids[0]},2\n{ids[1]},0\n{ids[2]},1\n")  # no header line
    ds = load_dataset(tmp_path)
    assert ds.partition.tolist() == [2, 0, 1]
    lines[1] = lines[1].rsplit(",", 1)[0] + ",2"
    (tmp_path / "attributes.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"attributes.csv:2: attribute values must be -1/1 or 0/1; Young is 2 "
    ):
        load_dataset(tmp_path)
