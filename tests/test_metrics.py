"""Known-answer tests for every metric, on a 4-point case checked by hand."""
import numpy as np
import pytest

from clusterbench import metrics

# Classes {a,b}=0, {c,d}=1; clusters {a,b,c}=0, {d}=1. Contingency (rows = classes) [[2,0],[1,1]].
Y_TRUE = np.array([0, 0, 1, 1])
Y_PRED = np.array([0, 0, 0, 1])


def test_hungarian_accuracy_matches_best_one_to_one_mapping():
    # classes 0 and 1 matched to clusters 1 and 0: 2 + 3 of 6 points agree.
    assert metrics.hungarian_accuracy([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]) == pytest.approx(5 / 6)
    assert metrics.hungarian_accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 4)


def test_accuracy_with_more_clusters_than_classes_leaves_extra_clusters_unmatched():
    # Three singleton-ish clusters for two classes: only two clusters can be matched.
    assert metrics.hungarian_accuracy([0, 0, 1, 1], [0, 1, 2, 2]) == pytest.approx(3 / 4)


def test_match_clusters_pairs_each_class_with_its_best_cluster_and_drops_noise():
    # labelled rows: class 0 -> cluster 7 (2 rows), class 1 -> cluster 3 (2 of 3 rows), cluster 9 unmatched;
    # the noise row (-1) sits in cluster 9 and must not make it a match for anything.
    m = metrics.match_clusters([0, 0, 1, 1, 1, -1], [7, 7, 3, 3, 9, 9])
    assert m.cluster_to_class == {7: 0, 3: 1}
    assert m.counts.tolist() == [[0, 2, 0], [2, 0, 1]] and m.clusters.tolist() == [3, 7, 9]
    assert (m.matched, m.accuracy) == (4, 0.8)
    assert metrics.hungarian_accuracy([0, 0, 1, 1, 1, -1], [7, 7, 3, 3, 9, 9]) == 0.8


def test_every_figure_names_clusters_by_the_metrics_matching():
    """figures' renamed predictions and GHDCC's confusion order come from metrics.match_clusters,
    so a figure's diagonal is the matching that ACC counts."""
    from clusterbench import figures
    from clusterbench.methods.ghdcc import figures as figures_ghdcc

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.6, (y_true * 3 + 1) % 5, rng.integers(0, 5, 300))
    mapping = metrics.match_clusters(y_true, y_pred).cluster_to_class
    renamed = figures.matched_predictions(y_true, y_pred)
    assert all(r == (str(mapping[p]) if p in mapping else f"cluster {p}") for r, p in zip(renamed, y_pred))
    conf = figures_ghdcc.matched_confusion(y_true, y_pred)
    assert conf["cluster_to_class"] == mapping
    assert np.trace(conf["matrix"]) == conf["matched"] == round(metrics.hungarian_accuracy(y_true, y_pred) * 300)


def test_nmi_is_one_for_relabelled_partition_and_zero_for_independent():
    assert metrics.nmi([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 9, 9]) == pytest.approx(1.0)
    assert metrics.nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)


def test_ari_hand_computed():
    # sum C(n_ij,2)=1, rows 2, cols 3, C(4,2)=6: expected 1, max 2.5 -> (1-1)/(2.5-1) = 0.
    assert metrics.ari(Y_TRUE, Y_PRED) == pytest.approx(0.0, abs=1e-12)
    assert metrics.ari([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_pairwise_f_hand_computed():
    # TP pairs 1; predicted-same pairs 3; true-same pairs 2: P=1/3, R=1/2, F=0.4.
    assert metrics.pairwise_f(Y_TRUE, Y_PRED) == pytest.approx(0.4)


def test_bcubed_f_hand_computed():
    # Precision per point 2/3,2/3,1/3,1 -> 2/3; recall 1,1,1/2,1/2 -> 3/4; F = 12/17.
    assert metrics.bcubed_f(Y_TRUE, Y_PRED) == pytest.approx(12 / 17)


def test_dmon_pairwise_accuracy_hand_computed():
    # Row maxima [2,1], column maxima [2,1]: TP=2, FP=2, FN=4, TN=12-8=4 -> 6/12.
    assert metrics.dmon_pairwise_accuracy(Y_TRUE, Y_PRED) == pytest.approx(0.5)
    assert metrics.dmon_pairwise_accuracy([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_dmon_pairwise_accuracy_is_not_hungarian_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    p = rng.integers(0, 10, 500)
    # Random labels: Hungarian ACC near chance (~0.1-0.15), the pair-counting score near 0.8.
    assert metrics.hungarian_accuracy(y, p) < 0.2
    assert metrics.dmon_pairwise_accuracy(y, p) > 0.7


def test_noise_points_in_ground_truth_are_ignored():
    y_true = np.array([0, 0, 1, 1, -1, -1])
    y_pred = np.array([0, 0, 1, 1, 0, 1])
    for name, fn in metrics.CLUSTERING_METRICS.items():
        assert fn(y_true, y_pred) == pytest.approx(1.0), name


def test_predicted_noise_counts_as_one_cluster():
    # DBSCAN labelling everything noise: one cluster -> ACC = largest class share, NMI 0.
    y_true = np.array([0, 0, 0, 1])
    assert metrics.hungarian_accuracy(y_true, -np.ones(4, int)) == pytest.approx(0.75)
    assert metrics.nmi(y_true, -np.ones(4, int)) == pytest.approx(0.0, abs=1e-12)


def test_top1_accuracy_compares_labels_directly():
    assert metrics.top1_accuracy([0, 1, 2, 3], [0, 1, 3, 2]) == pytest.approx(0.5)
    # No matching: swapped labels are wrong, unlike Hungarian ACC.
    assert metrics.top1_accuracy([0, 1], [1, 0]) == 0.0


def test_score_dispatches_by_task():
    assert set(metrics.score(Y_TRUE, Y_PRED)) == {"acc", "nmi", "ari", "pairwise_acc", "fp", "fb"}
    assert metrics.score(Y_TRUE, Y_TRUE, task="classification") == {"top1": 1.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.hungarian_accuracy([0, 1, 2], [0, 1])
