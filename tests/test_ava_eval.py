"""AVA frame mAP (`videojepa.eval.ava`): cases computed by hand, and numbers of the official evaluator."""

import json
from pathlib import Path

import pytest

from videojepa.errors import UserError
from videojepa.eval.ava import average_precision, frame_map

FIXTURE = Path(__file__).parent / "fixtures" / "ava_official_eval.json"
LABELMAP = (
    'item {\n  name: "stand"\n  id: 1\n}\nitem {\n  name: "sit"\n  id: 2\n}\nitem {\n  name: "walk"\n  id: 3\n}\n'
)


def files(tmp_path, groundtruth, detections, labelmap=LABELMAP):
    """Write the rows (lists of cells) as AVA CSVs; returns the three paths."""
    paths = tmp_path / "gt.csv", tmp_path / "det.csv", tmp_path / "labels.pbtxt"
    paths[0].write_text("".join(",".join(map(str, r)) + "\n" for r in groundtruth))
    paths[1].write_text("".join(",".join(map(str, r)) + "\n" for r in detections))
    paths[2].write_text(labelmap)
    return paths


def gt(video, ts, box, action, person=0):
    return [video, ts, *box, action, person]


def det(video, ts, box, action, score):
    return [video, ts, *box, action, score]


A, B, C = (0.1, 0.1, 0.4, 0.6), (0.5, 0.2, 0.9, 0.9), (0.0, 0.0, 0.5, 0.5)


def test_perfect_detections_score_one(tmp_path):
    truth = [gt("v1", "0902", A, 1), gt("v1", "0902", A, 2), gt("v1", "0902", B, 3), gt("v2", "0903", C, 1)]
    # every true (box, class) at a high score, every other class of those boxes at a lower one
    found = [det(r[0], r[1], r[2:6], r[6], 0.9) for r in truth]
    found += [det("v1", "0902", B, 1, 0.2), det("v2", "0903", C, 2, 0.1)]
    result = frame_map(*files(tmp_path, truth, found))
    assert result == {"mAP": 1.0, "per_class": {1: 1.0, 2: 1.0, 3: 1.0}}


def test_a_duplicate_of_a_matched_box_is_a_false_positive(tmp_path):
    truth = [gt("v1", "0902", A, 1), gt("v1", "0903", B, 1)]
    found = [
        det("v1", "0902", A, 1, 0.9),  # true positive
        det("v1", "0902", A, 1, 0.8),  # the same box again: false positive
        det("v1", "0903", B, 1, 0.7),  # true positive
    ]
    # ranked TP, FP, TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; the envelope keeps 1 up to recall 1/2
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6 (1.0 if the duplicate were ignored)
    assert frame_map(*files(tmp_path, truth, found))["per_class"][1] == pytest.approx(5 / 6, abs=1e-12)


def test_iou_just_below_one_half_does_not_match(tmp_path):
    truth = [gt("v1", "0902", (0.0, 0.0, 0.5, 0.5), 1)]
    # intersection 0.5 x 0.25 = 0.125 over union 0.25: IoU exactly 0.5 matches (>=)
    at_half = frame_map(*files(tmp_path, truth, [det("v1", "0902", (0.0, 0.0, 0.5, 0.25), 1, 0.9)]))
    assert at_half["mAP"] == 1.0
    # 0.5 x 0.2499 over 0.25: IoU 0.4998, a false positive
    below = frame_map(*files(tmp_path, truth, [det("v1", "0902", (0.0, 0.0, 0.5, 0.2499), 1, 0.9)]))
    assert below["mAP"] == 0.0


def test_a_class_without_ground_truth_is_left_out_of_the_mean(tmp_path):
    truth = [gt("v1", "0902", A, 1), gt("v1", "0902", B, 2), gt("v1", "0903", C, 2)]
    found = [
        det("v1", "0902", A, 1, 0.9),  # class 1: AP 1
        det("v1", "0902", A, 2, 0.8),  # class 2: FP, then TP (B), and C missed
        det("v1", "0902", B, 2, 0.7),
        det("v1", "0902", A, 3, 0.95),  # class 3 has no ground truth: not scored
    ]
    result = frame_map(*files(tmp_path, truth, found))
    # class 2: precision 0, 1/2 at recall 0, 1/2 -> AP 1/2 * 1/2 = 1/4
    assert result["per_class"] == {1: 1.0, 2: pytest.approx(0.25, abs=1e-12)}
    assert result["mAP"] == pytest.approx((1.0 + 0.25) / 2, abs=1e-12)  # not (1 + 0.25 + 0) / 3


def test_area_under_the_curve_uses_every_point_not_eleven():
    # two ground-truth boxes, ranked TP, FP, FP, TP: precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1
    ap = average_precision([0.9, 0.8, 0.7, 0.6], [True, False, False, True], 2)
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 0.5, abs=1e-12)  # every point: 0.75
    eleven_point = (6 * 1.0 + 5 * 0.5) / 11  # recall 0, 0.1, ..., 0.5 at precision 1; 0.6 ... 1 at 1/2
    assert abs(ap - eleven_point) > 0.02  # 0.7727: the 11-point VOC2007 rule would give another number


def test_precision_envelope_and_missed_boxes():
    # TP, FP, TP with 4 ground-truth boxes: the envelope lifts the FP's precision 1/2 to 2/3
    ap = average_precision([3, 2, 1], [True, False, True], 4)
    assert ap == pytest.approx(0.25 * 1 + 0.25 * 2 / 3, abs=1e-12)
    assert average_precision([], [], 3) == 0.0  # ground truth and no detection: AP 0


def test_a_detection_goes_to_the_box_it_overlaps_most_even_if_taken(tmp_path):
    """The official rule: a detection is compared with its best-overlapping ground-truth box only; when that
    one is matched already it is a false positive, though another box it overlaps by >= 0.5 is still free."""
    g1, g2 = (0.0, 0.0, 0.5, 0.5), (0.1, 0.0, 0.6, 0.5)
    truth = [gt("v1", "0902", g1, 1, 0), gt("v1", "0902", g2, 1, 1)]
    second = (0.04, 0.0, 0.54, 0.5)  # IoU 0.852 with g1 (taken), 0.786 with g2 (free)
    found = [det("v1", "0902", g1, 1, 0.9), det("v1", "0902", second, 1, 0.8)]
    assert frame_map(*files(tmp_path, truth, found))["mAP"] == pytest.approx(0.5, abs=1e-12)  # not 1.0


def test_at_most_fifty_detections_per_keyframe(tmp_path):
    truth = [gt("v1", "0902", A, 1), gt("v1", "0903", B, 2)]
    true_hit = det("v1", "0902", A, 1, 0.5)
    crowd = [det("v1", "0902", B, 2, round(0.9 + i / 1000, 3)) for i in range(50)]
    # 50 higher-scored detections of class 2 push the class-1 hit out: class 1 AP 0
    assert frame_map(*files(tmp_path, truth, [*crowd, true_hit]))["per_class"][1] == 0.0
    # with 49 it stays
    assert frame_map(*files(tmp_path, truth, [*crowd[:49], true_hit]))["per_class"][1] == 1.0


def test_keyframes_the_ground_truth_lists(tmp_path):
    truth = [gt("v1", "0902", A, 1), ["v1", "0905"]]  # 0905: an annotated keyframe with no box
    found = [det("v1", "902.0", A, 1, 0.5)]  # the same keyframe written another way
    assert frame_map(*files(tmp_path, truth, found))["mAP"] == 1.0
    # a detection at an unlisted keyframe is ignored; one at a listed empty keyframe is a false positive
    ignored = frame_map(*files(tmp_path, truth, [*found, det("v9", "0902", A, 1, 0.9)]))
    assert ignored["mAP"] == 1.0
    counted = frame_map(*files(tmp_path, truth, [*found, det("v1", "0905", A, 1, 0.9)]))
    assert counted["mAP"] == pytest.approx(0.5, abs=1e-12)


def test_excluded_timestamps_and_classes_outside_the_label_map(tmp_path):
    truth = [gt("v1", "0902", A, 1), gt("v1", "0903", B, 1), gt("v1", "0902", B, 7)]
    found = [det("v1", "0902", A, 1, 0.9), det("v1", "0902", B, 7, 0.99)]  # class 7 is not in the label map
    paths = files(tmp_path, truth, found)
    assert frame_map(*paths)["mAP"] == pytest.approx(0.5, abs=1e-12)  # B at 0903 is missed
    excluded = tmp_path / "excluded.csv"
    excluded.write_text("v1,0903\n")
    assert frame_map(*paths, excluded=excluded) == {"mAP": 1.0, "per_class": {1: 1.0}}


def test_official_evaluator_numbers(tmp_path):
    """Random cases (several videos and classes, jittered, duplicated and false boxes, classes outside the label
    map, empty keyframes, detections at unlisted keyframes, keyframes with more than 50 detections) scored by
    ActivityNet's evaluator (fixture `source`). Its arithmetic is ours (numpy float64 sums in the same order):
    the tolerance 1e-12 only absorbs summation order."""
    doc = json.loads(FIXTURE.read_text())
    assert len(doc["cases"]) >= 4
    for case in doc["cases"]:
        gt_path, det_path, map_path = tmp_path / "gt.csv", tmp_path / "det.csv", tmp_path / "map.pbtxt"
        gt_path.write_text(case["groundtruth"])
        det_path.write_text(case["detections"])
        map_path.write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n' for i, n in case["labelmap"].items()))
        result = frame_map(gt_path, det_path, map_path)
        expected = {int(k): v for k, v in case["per_class"].items()}
        assert set(result["per_class"]) == set(expected), case["name"]
        for class_id, ap in expected.items():
            assert result["per_class"][class_id] == pytest.approx(ap, abs=1e-12), (case["name"], class_id)
        assert result["mAP"] == pytest.approx(case["mAP"], abs=1e-12), case["name"]
    assert len({round(c["mAP"], 6) for c in doc["cases"]}) == len(doc["cases"])  # the cases differ


@pytest.mark.parametrize(
    "row, message",
    [
        ("v1,0902,0.1,0.1,0.4\n", "det.csv:1: expected 8 columns"),
        ("v1,0902,0.1,0.1,0.4,0.6,1,high\n", "det.csv:1: score 'high' is not a number"),
        ("v1,0902,0.1,0.1,0.4,1.6,1,0.5\n", "det.csv:1: y2 1.6 is outside [0, 1]"),
        ("v1,09:02,0.1,0.1,0.4,0.6,1,0.5\n", "det.csv:1: timestamp '09:02' is not a number"),
        ("v1,0902,0.1,0.1,0.4,0.6,stand,0.5\n", "det.csv:1: action_id 'stand' is not an integer"),
    ],
)
def test_bad_detection_rows_name_the_file_and_line(tmp_path, row, message):
    gt_path, det_path, map_path = files(tmp_path, [gt("v1", "0902", A, 1)], [])
    det_path.write_text(row)
    with pytest.raises(UserError) as err:
        frame_map(gt_path, det_path, map_path)
    assert message in str(err.value) and "\n" not in str(err.value)
