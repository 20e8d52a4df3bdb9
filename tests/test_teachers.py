"""Label fusion: human masks win, teacher disagreement near boundaries and about whole people is ignored."""
from __future__ import annotations

import numpy as np

from danmask.train.teachers import fuse_labels, unsalient


def _scene():
    gt = np.zeros((100, 160), bool)
    gt[10:90, 20:60] = True  # the subject
    gt[20:40, 120:135] = True  # a bystander the human annotator marked too
    rvm = np.zeros(gt.shape, np.float32)
    rvm[12:90, 20:60] = 0.95  # the salient-person teacher sees the subject, slightly shorter at the top
    rvm[25:30, 120:125] = 0.6  # and barely the bystander
    return gt, rvm


def test_whole_people_the_teacher_leaves_out_are_ignored_not_taught():
    gt, rvm = _scene()
    left_out = unsalient(gt, rvm)
    assert left_out[20:40, 120:135].all() and not left_out[10:90, 20:60].any()
    label, ignore = fuse_labels(gt, rvm, np.zeros_like(rvm), gt_is_human=True)
    assert (label == gt).all()  # the human mask stays the label ...
    assert ignore[30, 127] and not ignore[50, 40]  # ... but the bystander is not taught either way
    assert ignore[11, 40]  # boundary disagreement (rows 10-11) is forgiven too


def test_teacher_only_frames_use_rvm_alpha():
    _, rvm = _scene()
    label, ignore = fuse_labels(None, rvm, (rvm > 0.5).astype(np.float32), gt_is_human=False)
    assert np.array_equal(label, rvm) and not ignore.any()
