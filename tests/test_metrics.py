"""The one COCO evaluation against hand-computed AP, and the one confusion plot against the matrix it must draw.

Hand computation follows COCOeval: detections sorted by score, cumulative precision/recall, precision made
monotone from the right, then read at the 101 recall points 0, 0.01, ..., 1 (the first detection whose recall
reaches the point; 0 past the last one), AP = mean of the 101 values.
"""

import numpy as np
import pytest
from PIL import Image

from sardata.metrics import (
    METRIC_KEYS,
    coco_detection_metrics,
    confusion_figure,
    normalise_rows,
    plot_confusion_matrix,
)

#: AP when the detections reach recall 0.5 at precision 1 and nothing more: points 0..0.50 are 1, 51 of 101.
HALF = 51 / 101


def _gt(boxes_per_image: dict, categories=("ship",)):
    images = [{"id": i, "width": 200, "height": 200} for i in boxes_per_image]
    anns = []
    for image_id, boxes in boxes_per_image.items():
        for box, cat in boxes:
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": box,
                         "area": box[2] * box[3], "iscrowd": 0})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(categories)]
    return {"images": images, "annotations": anns, "categories": cats}


def _det(image_id, box, score, cat=1):
    return {"image_id": image_id, "category_id": cat, "bbox": box, "score": score}


A, B = [10, 10, 40, 40], [100, 100, 50, 50]


def test_perfect_detections_score_one_everywhere():
    gt = _gt({1: [(A, 1), (B, 1)], 2: [(B, 1)]})
    m = coco_detection_metrics(gt, [_det(a["image_id"], a["bbox"], 0.9) for a in gt["annotations"]])
    assert m["mAP"] == pytest.approx(1.0) and m["AP50"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(1.0)
    assert m["per_class"]["ship"] == {"mAP": pytest.approx(1.0), "AP50": pytest.approx(1.0), "n_gt": 3}
    assert (m["n_images"], m["n_gt"], m["n_pred"]) == (2, 3, 3)
    assert set(METRIC_KEYS) <= set(m)


def test_one_of_two_found_is_51_of_101():
    gt = _gt({1: [(A, 1), (B, 1)]})
    m = coco_detection_metrics(gt, [_det(1, A, 0.9)])
    assert m["AP50"] == pytest.approx(HALF) and m["mAP"] == pytest.approx(HALF)


def test_false_positive_between_true_positives_by_hand():
    # sorted: TP (0.9), FP (0.5), TP (0.01). precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; made monotone from the
    # right: 1, 2/3, 2/3. Recall points <= 0.5 read 1 (51 points), points in (0.5, 1] read 2/3 (50 points).
    gt = _gt({1: [(A, 1), (B, 1)]})
    dets = [_det(1, A, 0.9), _det(1, [150, 10, 30, 30], 0.5), _det(1, B, 0.01)]
    expected = (51 + 50 * 2 / 3) / 101
    assert coco_detection_metrics(gt, dets)["AP50"] == pytest.approx(expected)
    # the 0.01 detection counts at the default threshold (0.001) and not at the usual display threshold 0.05
    at_005 = coco_detection_metrics(gt, dets, score_threshold=0.05)
    assert at_005["AP50"] == pytest.approx(HALF) and at_005["n_pred"] == 2


def test_mAP_counts_the_iou_thresholds_a_box_passes():
    # IoU of [0,0,100,62] with [0,0,100,100] is 0.62: a match at IoU 0.50, 0.55, 0.60 only -> mAP 3/10, AP75 0
    gt = _gt({1: [([0, 0, 100, 100], 1)]})
    m = coco_detection_metrics(gt, [_det(1, [0, 0, 100, 62], 0.8)])
    assert m["AP50"] == pytest.approx(1.0) and m["AP75"] == pytest.approx(0.0) and m["mAP"] == pytest.approx(0.3)


def test_per_class_and_subsets():
    gt = _gt({1: [(A, 1)], 2: [(B, 2)]}, categories=("ship", "boat"))
    m = coco_detection_metrics(gt, [_det(1, A, 0.9, cat=1)])  # the boat is missed
    assert m["per_class"]["ship"]["AP50"] == pytest.approx(1.0) and m["per_class"]["boat"]["AP50"] == 0.0
    assert m["AP50"] == pytest.approx(0.5)  # mean over the categories
    only_2 = coco_detection_metrics(gt, [_det(1, A, 0.9, cat=1)], image_ids=[2])
    assert only_2["AP50"] == 0.0 and only_2["n_gt"] == 1 and np.isnan(only_2["per_class"]["ship"]["AP50"])
    empty = coco_detection_metrics(gt, [], image_ids=[2])
    assert empty["AP50"] == 0.0 and empty["per_class"]["boat"]["n_gt"] == 1


def test_no_ground_truth_is_nan_not_zero(tmp_path):
    gt = _gt({1: [], 2: [(A, 1)]})
    m = coco_detection_metrics(gt, [_det(1, A, 0.9)], image_ids=[1])
    assert np.isnan(m["AP50"]) and m["n_gt"] == 0
    bad = tmp_path / "gt.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="gt.json"):
        coco_detection_metrics(bad, [])


def test_confusion_plot_draws_the_row_normalised_matrix(tmp_path):
    cm = np.array([[8, 2, 0], [1, 1, 2], [0, 0, 0]])
    names = ["sea", "ship", "land"]
    expected = np.array([[0.8, 0.2, 0.0], [0.25, 0.25, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(normalise_rows(cm), expected)

    fig, ax = confusion_figure(cm, names)
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    assert [t.get_text() for t in ax.texts] == ["8", "2", "0", "1", "1", "2", "0", "0", "0"]
    # where each cell is in the written PNG: a point off its centre (the count is written at the centre)
    fig.canvas.draw()
    height = fig.canvas.get_width_height()[1]
    probes = {(i, j): ax.transData.transform((j - 0.35, i - 0.35)) for i in range(3) for j in range(3)}
    cmap = ax.images[0].get_cmap()

    path = plot_confusion_matrix(cm, names, tmp_path / "cm.png")
    with Image.open(path) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB")).astype(float)
    assert pixels.shape[0] == height
    for (i, j), (x, y) in probes.items():
        drawn = pixels[int(round(height - y)), int(round(x))]
        want = np.array(cmap(expected[i, j])[:3]) * 255
        np.testing.assert_allclose(drawn, want, atol=3, err_msg=f"cell {i},{j}")
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion_matrix(np.zeros((2, 2)), names, tmp_path / "bad.png")


def test_match_greedy_takes_detections_by_score_and_each_box_once():
    from sardata.metrics import iou_xywh, match_greedy

    gt = [[0, 0, 10, 10], [20, 0, 10, 10]]
    np.testing.assert_allclose(iou_xywh([0, 0, 10, 10], [[5, 0, 10, 10], [0, 0, 10, 10], [50, 50, 1, 1]]),
                               [50 / 150, 1.0, 0.0])
    # the lower-scored exact box comes second, so the first (IoU 0.68) takes box 0 and the exact one finds it taken
    detections = [(0.5, [0, 0, 10, 10]), (0.9, [1, 1, 10, 10]), (0.7, [21, 0, 10, 10]), (0.8, [60, 60, 5, 5])]
    matched, hits = match_greedy(gt, detections)
    assert matched.tolist() == [True, True]
    assert hits == [True, False, True, False]  # scores 0.9, 0.8, 0.7, 0.5
    matched, hits = match_greedy([], detections)
    assert matched.tolist() == [] and hits == [False] * 4


def test_class_agnostic_ap50_forgives_only_the_class():
    from sardata.metrics import class_agnostic_ap50, coco_detection_metrics

    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "area": 900,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 2, "bbox": [50, 50, 20, 40], "area": 800,
                           "iscrowd": 0}],
          "categories": [{"id": 1, "name": "A220"}, {"id": 2, "name": "Boeing737"}]}
    swapped = [{"image_id": 1, "category_id": 2, "bbox": [10, 10, 30, 30], "score": 0.9},
               {"image_id": 2, "category_id": 1, "bbox": [50, 50, 20, 40], "score": 0.8}]
    assert coco_detection_metrics(gt, swapped)["AP50"] == pytest.approx(0.0)  # right boxes, wrong classes
    assert class_agnostic_ap50(gt, swapped) == pytest.approx(1.0)
    misplaced = [{"image_id": 1, "category_id": 1, "bbox": [60, 60, 30, 30], "score": 0.9}]  # IoU 0
    assert class_agnostic_ap50(gt, misplaced) == pytest.approx(0.0)
    half = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30], "score": 0.9}]  # one of two found
    assert class_agnostic_ap50(gt, half) == pytest.approx(0.5, abs=0.01)
