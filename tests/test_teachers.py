"""Label fusion: human masks win; elsewhere the two teachers teach where they agree and are ignored where not."""
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


def test_teacher_only_frames_teach_where_the_teachers_agree():
    _, rvm = _scene()
    tracked = np.zeros_like(rvm)
    tracked[12:80, 20:60] = 1.0  # person-track cuts the subject's feet off and never tracked the bystander
    label, ignore = fuse_labels(None, rvm, tracked, gt_is_human=False)
    assert label[50, 40] == (0.95 + 1.0) / 2 and not ignore[50, 40]  # agreement: the mean is taught
    assert ignore[85, 40] and ignore[27, 122]  # disagreement (feet, bystander): taught neither way
    assert label[5, 5] == 0 and not ignore[5, 5]  # both say background


def test_a_model_made_mask_must_agree_too():
    gt, rvm = _scene()
    tracked = (rvm > 0.5).astype(np.float32)
    _, ignore = fuse_labels(gt, rvm, tracked, gt_is_human=False)
    assert ignore[11, 40] and ignore[35, 130]  # the model-made mask says person, both teachers do not
    assert not ignore[50, 40]
