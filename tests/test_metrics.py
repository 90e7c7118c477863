import numpy as np

from lsa_edge.metrics import attribute_metrics, majority_accuracy, tune_thresholds


def test_accuracy_and_balanced_accuracy_by_hand():
    labels = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    probs = np.array([[0.9, 0.2], [0.4, 0.1], [0.1, 0.3], [0.2, 0.8]])
    m = attribute_metrics(probs, labels, names=("a", "b"))
    assert np.allclose(m.accuracy, [0.75, 1.0])
    assert np.allclose(m.balanced_accuracy, [(0.5 + 1.0) / 2, 1.0])
    d = m.to_dict()
    assert d["n_images"] == 4 and set(d["per_attribute"]) == {"a", "b"}
    assert d["mean_accuracy"] == np.mean([0.75, 1.0])


def test_single_class_attribute_balanced_accuracy_is_defined():
    m = attribute_metrics(np.array([[0.2], [0.7]]), np.array([[0], [0]]), names=("x",))
    assert m.balanced_accuracy[0] == 0.5 and not np.isnan(m.mean_balanced_accuracy)


def test_tuned_thresholds_beat_half_on_shifted_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (400, 3))
    probs = np.clip(labels * 0.3 + rng.uniform(0, 0.55, labels.shape), 0, 1)  # positives in 0.3..0.85
    thr = tune_thresholds(probs, labels)
    assert (thr < 0.5).all()
    assert (
        attribute_metrics(probs, labels, thr, names="abc").mean_accuracy
        > attribute_metrics(probs, labels, names="abc").mean_accuracy
    )


def test_majority_accuracy():
    assert majority_accuracy(np.array([[1], [1], [0]]), np.array([[1], [0]])) == 0.5
