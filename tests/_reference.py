"""Straightforward reference implementations of the runtime's pre- and postprocessing: the code as it was
before the speed-ups (lsa_edge 9574de8), kept here as the oracle the optimised paths are tested against.
Readable, not fast: per-face loops, the arithmetic written out, no buffers, no lookup tables.
"""

from __future__ import annotations

import cv2
import numpy as np

from lsa_edge.detector import FaceDetection, Letterbox


# ---------------------------------------------------------------------------------------------- detector
def letterbox(frame: np.ndarray, size: int, pad_value: int = 0) -> tuple[np.ndarray, Letterbox]:
    img = np.asarray(frame)
    h, w = img.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, min(size, round(w * s))), max(1, min(size, round(h * s)))
    if (nw, nh) != (w, h):
        interp = cv2.INTER_AREA if nw < w or nh < h else cv2.INTER_LINEAR
        img = cv2.resize(img, (nw, nh), interpolation=interp)
    canvas = np.full((size, size, 3), pad_value, dtype=np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py : py + nh, px : px + nw] = img
    return canvas, Letterbox(size, nw / w, nh / h, px, py, (h, w))


def to_input_tensor(canvases: np.ndarray, config, color_order: str = "BGR") -> np.ndarray:
    x = np.asarray(canvases)
    if x.ndim == 3:
        x = x[None]
    if color_order != config.color_order:
        x = x[..., ::-1]
    lo, hi = config.input_range
    x = x.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def decode(regressors, logits, anchors, config, min_score=None):
    reg = np.asarray(regressors, dtype=np.float64).reshape(-1, config.num_coords)
    lg = np.asarray(logits, dtype=np.float64).reshape(-1)
    thr = config.min_score if min_score is None else min_score
    scores = 1.0 / (1.0 + np.exp(-np.clip(lg, -config.score_clipping, config.score_clipping)))
    keep = np.flatnonzero(scores >= thr)
    reg, anc, scores = reg[keep] / config.input_size, anchors[keep], scores[keep]
    centre = reg[:, 0:2] + anc
    half = reg[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    kps = reg[:, 4:].reshape(-1, config.num_keypoints, 2) + anc[:, None, :]
    valid = (half > 0).all(axis=1)
    boxes, kps, scores = boxes[valid], kps[valid], scores[valid]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], kps[order], scores[order]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def non_max_suppression(boxes, keypoints, scores, iou_threshold=0.3, method="weighted", max_faces=None):
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], np.asarray(scores)[order]
    remaining = np.arange(len(scores))
    out_b, out_k, out_s = [], [], []
    while len(remaining) and (max_faces is None or len(out_s) < max_faces):
        top = remaining[0]
        overlap = _iou(boxes[top], boxes[remaining]) > iou_threshold
        overlap[0] = True
        group, remaining = remaining[overlap], remaining[~overlap]
        if method == "weighted" and len(group) > 1:
            w = scores[group] / scores[group].sum()
            out_b.append(w @ boxes[group])
            out_k.append(np.tensordot(w, keypoints[group], axes=1))
        else:
            out_b.append(boxes[top])
            out_k.append(keypoints[top])
        out_s.append(scores[top])
    if not out_s:
        p = keypoints.shape[1] if keypoints.ndim == 3 else 0
        return np.zeros((0, 4)), np.zeros((0, p, 2)), np.zeros(0)
    return np.stack(out_b), np.stack(out_k), np.asarray(out_s)


def detect(detector, frame: np.ndarray, color_order: str = "BGR") -> list[FaceDetection]:
    """FaceDetector.detect as it was: letterbox, input tensor, model, decode, NMS, one face at a time."""
    canvas, box = letterbox(frame, detector.config.input_size)
    reg, logits = detector.runner(to_input_tensor(canvas, detector.config, color_order))[:2]
    boxes, kps, scores = decode(
        np.asarray(reg)[0], np.asarray(logits)[0], detector.anchors, detector.config, detector.min_score
    )
    boxes, kps, scores = non_max_suppression(boxes, kps, scores, detector.iou_threshold, detector.nms)
    s = detector.config.input_size
    corners = box.to_frame(boxes.reshape(-1, 2, 2) * s).reshape(-1, 4)
    points = box.to_frame(kps * s)
    h, w = box.frame_size
    faces = []
    for b, k, sc in zip(corners, points, scores):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        if not (0 <= cx <= w and 0 <= cy <= h):
            continue
        if max(b[2] - b[0], b[3] - b[1]) < detector.min_face_size:
            continue
        faces.append(
            FaceDetection(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(sc),
                keypoints=tuple((float(x), float(y)) for x, y in k),
                keypoint_names=detector.config.keypoints,
            )
        )
        if detector.max_faces is not None and len(faces) >= detector.max_faces:
            break
    return faces


# -------------------------------------------------------------------------------------------- preprocess
def warp(image: np.ndarray, m: np.ndarray, out_size: tuple[int, int], resize: str = "area") -> np.ndarray:
    out_h, out_w = out_size
    m = np.asarray(m, dtype=np.float64)
    a_inv = np.linalg.inv(m[:, :2])
    corners = (np.array([[0, 0], [out_w, 0], [0, out_h], [out_w, out_h]], np.float64) - m[:, 2]) @ a_inv.T
    h, w = image.shape[:2]
    pad = 2 + int(np.ceil(2.0 / max(float(np.linalg.svd(m[:, :2], compute_uv=False).max()), 1e-6)))
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 >= 2 and y1 - y0 >= 2 and (x0 > 0 or y0 > 0 or x1 < w or y1 < h):
        image = image[y0:y1, x0:x1]
        m = np.concatenate([m[:, :2], (m[:, 2] + m[:, :2] @ np.array([x0, y0], np.float64))[:, None]], axis=1)
    image = np.ascontiguousarray(image)
    scale = float(np.linalg.svd(m[:, :2], compute_uv=False).max())
    if resize == "area" and scale < 0.8:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        m = np.concatenate([m[:, :2] @ np.diag([w / nw, h / nh]), m[:, 2:]], axis=1)
    m_idx = m.copy()
    m_idx[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(
        image, m_idx, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def similarity_transform(src, dst, weights=None) -> np.ndarray:
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    wt = np.ones(len(src)) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = wt > 0
    src, dst, wt = src[keep], dst[keep], wt[keep] / wt[keep].sum()
    mu_s, mu_d = wt @ src, wt @ dst
    s0, d0 = src - mu_s, dst - mu_d
    cov = (d0 * wt[:, None]).T @ s0
    var_s = float((wt * (s0**2).sum(axis=1)).sum())
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / var_s)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_keypoints(image: np.ndarray, keypoints: np.ndarray, pre) -> np.ndarray:
    out_h, out_w = pre.input_size
    dst = np.asarray(pre.template.points, dtype=np.float64) * [out_w, out_h]
    m = similarity_transform(keypoints, dst, pre.template.weights)
    return warp(image, m, (out_h, out_w), pre.resize)


def normalize(batch: np.ndarray, pre, input_order: str = "RGB") -> np.ndarray:
    x = np.asarray(batch)
    if x.ndim == 3:
        x = x[None]
    if input_order != pre.color_order:
        x = x[..., ::-1]
    x = x.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(pre.mean, dtype=np.float32)) / np.asarray(pre.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


# ---------------------------------------------------------------------------------------------- pipeline
def predict(pipe, frame: np.ndarray, color_order: str = "BGR") -> tuple[list[FaceDetection], np.ndarray]:
    """Pipeline.predict without tracking, as it was: faces and their N×C probabilities."""
    dets = detect(pipe.detector, frame, color_order)
    pre = pipe.card.preprocessing
    crops = [align_keypoints(frame, d.keypoints_array(), pre) for d in dets]
    if not crops:
        return dets, np.zeros((0, len(pipe.card.attributes)), np.float32)
    return dets, pipe.backend.predict(
        normalize(np.stack(crops), pre, input_order=color_order), pipe.max_batch
    )
