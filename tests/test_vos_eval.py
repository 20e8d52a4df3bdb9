"""`danmask eval --vos`: DAVIS's J and F, the propagation baselines, the command.

The official `davis2017-evaluation` package cannot be installed here (no registry has it), so its algorithm is
re-implemented below as literally as the official files read (metrics.py: db_eval_iou, f_measure, _seg2bmap;
utils.py: db_statistics), but from other primitives: the boundary map by edge-padding instead of shifted copies,
the tolerance band by SciPy's exact Euclidean distance transform instead of dilation with a disk. danmask's
J and F must agree with it to 0.005 on real DAVIS masks with perturbed predictions (they agree exactly).
"""
from __future__ import annotations

import json
import math
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from _oracle import PeopleOracle
from _shared import shared_data
from danmask.cli import main
from danmask.eval import vos
from danmask.eval.vos_methods import FirstMask, FlowWarp, PersonTrackPick, Propagator, make_method, pick_people
from danmask.eval.vos_run import evaluate_vos, vos_sequences
from danmask.segmenter import Segmenter, TemporalConfig
from danmask.synthetic import make_video, person_mask
from danmask.video import iter_frames

ndimage = pytest.importorskip("scipy.ndimage")


# --- the reference: DAVIS's algorithm, written independently ---------------------------------------------------

def ref_j(truth, pred):
    """db_eval_iou: intersection / union, 1 where the union is (close to) 0."""
    inter = np.sum(np.logical_and(truth, pred))
    union = np.sum(np.logical_or(truth, pred))
    return 1.0 if np.isclose(union, 0) else inter / union


def ref_bmap(seg):
    """_seg2bmap: a pixel differing from its east, south or south-east neighbour; past the last row/column the
    neighbour is the pixel's own edge value (which is what the official overrides of the last row/column do)."""
    p = np.pad(seg.astype(bool), ((0, 1), (0, 1)), mode="edge")
    c = p[:-1, :-1]
    return (c != p[:-1, 1:]) | (c != p[1:, :-1]) | (c != p[1:, 1:])


def ref_f(pred, truth, bound_th=0.008):
    """f_measure: boundaries matched within a disk of ceil(bound_th * ||shape||) px; official edge cases."""
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(pred.shape))
    fg, gt = ref_bmap(pred), ref_bmap(truth)
    n_fg, n_gt = np.sum(fg), np.sum(gt)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:  # within the disk of a boundary pixel <=> Euclidean distance to the boundary <= bound_pix
        fg_dil = ndimage.distance_transform_edt(~fg) <= bound_pix
        gt_dil = ndimage.distance_transform_edt(~gt) <= bound_pix
        precision = np.sum(fg & gt_dil) / float(n_fg)
        recall = np.sum(gt & fg_dil) / float(n_gt)
    return 0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ref_statistics(values):
    """db_statistics: nan-mean, share > 0.5, first-bin mean - last-bin mean (uint8 bin edges, < 256 frames)."""
    values = np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        m, o = np.nanmean(values), np.nanmean(values > 0.5)
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        d = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return m, o, d


def shift(mask, dy, dx):
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = src
    return out


def perturbations(truth):
    kernel = np.ones((9, 9), np.uint8)
    yield "identical", truth
    yield "shift 3,2", shift(truth, 3, 2)
    yield "shift -12,25", shift(truth, -12, 25)
    yield "eroded", cv2.erode(truth.astype(np.uint8), kernel).astype(bool)
    yield "dilated", cv2.dilate(truth.astype(np.uint8), kernel, iterations=2).astype(bool)
    yield "empty", np.zeros_like(truth)
    yield "full", np.ones_like(truth)
    yield "box", cv2.rectangle(np.zeros(truth.shape, np.uint8), (100, 50), (400, 470), 1, -1).astype(bool)


# --- the metric on hand-made masks ---------------------------------------------------------------------------

def square(shape=(100, 200), top=30, left=40, size=40):
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    return m


def test_identical_disjoint_and_empty():
    a = square()
    assert vos.j_measure(a, a) == 1.0 and vos.f_measure(a, a) == 1.0
    far = square(left=140)
    assert vos.j_measure(a, far) == 0.0 and vos.f_measure(a, far) == 0.0
    empty = np.zeros_like(a)
    assert vos.j_measure(empty, empty) == 1.0 and vos.f_measure(empty, empty) == 1.0  # DAVIS: both empty agree
    assert vos.j_measure(empty, a) == 0.0 and vos.f_measure(empty, a) == 0.0
    assert vos.boundary_pr(empty, a) == (1.0, 0.0) and vos.boundary_pr(a, empty) == (0.0, 1.0)
    with pytest.raises(ValueError):
        vos.j_measure(a, a[:50])


def test_tolerance_is_ceil_of_a_fraction_of_the_diagonal():
    assert vos.bound_pixels((480, 854)) == 8  # ceil(0.008 * 979.6)
    assert vos.bound_pixels((100, 200)) == 2  # ceil(1.79)
    assert vos.bound_pixels((100, 200), 5) == 5


@pytest.mark.parametrize("k", [1, 2, 3, 4, 8])
def test_shift_against_the_tolerance(k):
    """Diagonal 223.6 px -> 2 px tolerance: a square moved k px sideways keeps a perfect F while k <= 2; beyond it
    only the top and bottom edges (still within reach) match."""
    a, b = square(), square(left=40 + k)
    assert vos.j_measure(a, b) == pytest.approx((40 - k) * 40 / ((40 + k) * 40))
    f = vos.f_measure(a, b)
    if k <= 2:
        assert f == 1.0
    else:
        assert 0.3 < f < 1.0
    assert f == pytest.approx(ref_f(b, a))


def test_statistics_by_hand():
    values = [1.0, 1.0, 0.4, 0.4, 0.2, 0.2, 0.2, 0.0]
    s = vos.statistics(values)
    assert s.mean == pytest.approx(np.mean(values))
    assert s.recall == pytest.approx(2 / 8)
    # edges round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: bins [0..2] and [5..7]
    assert s.decay == pytest.approx(np.mean(values[0:3]) - np.mean(values[5:8]))
    assert all(math.isnan(x) for x in (vos.statistics([]).mean, vos.statistics([]).decay))
    assert vos.davis_frames(10) == slice(1, 9)


# --- agreement with the reference on real DAVIS masks ---------------------------------------------------------

def _davis_truths(sequence, step):
    root = shared_data() / "davis-people" / "Annotations" / "480p" / sequence
    if not root.is_dir():
        pytest.skip(f"DAVIS {sequence} is not in the shared data")
    return [np.asarray(Image.open(p).convert("L")) > 127 for p in sorted(root.glob("*.png"))[::step]]


@pytest.mark.parametrize("sequence", ["breakdance", "dance-twirl", "kite-surf", "parkour"])
def test_agrees_with_the_davis_reference_per_frame(sequence):
    worst = 0.0
    for truth in _davis_truths(sequence, 25):
        for what, pred in perturbations(truth):
            for ours, theirs in ((vos.j_measure(pred, truth), ref_j(truth, pred)),
                                 (vos.f_measure(pred, truth), ref_f(pred, truth))):
                assert abs(ours - theirs) <= 0.005, (sequence, what, ours, theirs)
                worst = max(worst, abs(ours - theirs))
    assert worst < 1e-9  # in fact identical


def test_agrees_with_the_davis_reference_per_sequence():
    """A whole sequence against the next frames' truth (a prediction that lags by k frames), statistics too."""
    truths = _davis_truths("kite-surf", 1)
    for lag in (2,):
        preds = [truths[max(0, i - lag)] for i in range(len(truths))]
        kept = vos.davis_frames(len(truths))
        j = [vos.j_measure(p, t) for p, t in zip(preds[kept], truths[kept])]
        f = [vos.f_measure(p, t) for p, t in zip(preds[kept], truths[kept])]
        ref = [ref_statistics([ref_j(t, p) for p, t in zip(preds[1:-1], truths[1:-1])]),
               ref_statistics([ref_f(p, t) for p, t in zip(preds[1:-1], truths[1:-1])])]
        for ours, theirs in zip((vos.statistics(j), vos.statistics(f)), ref):
            assert np.allclose([ours.mean, ours.recall, ours.decay], theirs, atol=1e-9)


# --- baselines on a synthetic clip ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 30-frame synthetic clip written in DAVIS layout (frames decoded from the encoded video), with truth."""
    root = tmp_path_factory.mktemp("vos")
    video = make_video(root / "clip.mp4", frames=30, shape=(180, 320))
    img_dir, ann_dir = root / "davis" / "JPEGImages" / "480p" / "walk", root / "davis" / "Annotations" / "480p" / "walk"
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    for i, frame in enumerate(iter_frames(video.path)):
        Image.fromarray(frame.rgb).save(img_dir / f"{i:05d}.jpg", quality=95)
        Image.fromarray(video.masks[i].astype(np.uint8) * 255).save(ann_dir / f"{i:05d}.png")
    return video, root / "davis"


def _run(method, davis):
    sequences, _ = vos_sequences(davis)
    return evaluate_vos(sequences, [method])[0].summary()


def test_first_mask_scores_the_motion(clip):
    video, davis = clip
    s = _run(FirstMask(), davis)
    expected = [vos.j_measure(video.masks[0], m) for m in video.masks[1:-1]]
    assert s["mean"]["J"] == pytest.approx(np.mean(expected))
    assert s["mean"]["frames"] == 28 and s["mean"]["J_decay"] > 0.2  # the person walks away from it


def textured_walk(frames=8, step=3):
    """A textured ellipse sliding `step` px right per frame over a textured background, in memory (exact)."""
    rng = np.random.default_rng(0)
    bg, tex = (cv2.GaussianBlur(rng.integers(0, 255, (180, 320, 3), dtype=np.uint8), (0, 0), 2) for _ in range(2))
    out = []
    for i in range(frames):
        m = cv2.ellipse(np.zeros((180, 320), np.uint8), (80 + step * i, 90), (30, 50), 0, 0, 360, 1, -1).astype(bool)
        img = bg.copy()
        img[m] = np.roll(tex, step * i, axis=1)[m]
        out.append((img, m))
    return out


def test_flow_follows_the_object():
    """Step by step the warp is near exact where the object has texture; it then smears at the trailing edge (a
    disoccluded background pixel samples where the object was: backward warping's known weakness)."""
    clip = textured_walk()
    warped = list(FlowWarp().propagate(((rgb, i / 30) for i, (rgb, _) in enumerate(clip)), {1: clip[0][1]}))
    assert len(warped) == len(clip)
    assert vos.j_measure(warped[1][1], clip[1][1]) > 0.93 > vos.j_measure(clip[0][1], clip[1][1])
    assert all(vos.j_measure(w[1], m) > vos.j_measure(clip[0][1], m) + 0.05 for w, (_, m) in zip(warped[2:], clip[2:]))


def test_flow_beats_standing_still_on_the_synthetic_person(clip):
    """make_video's person is flat-coloured: DIS sees only its edges, so the warp lags, yet it beats no motion."""
    _, davis = clip
    flow, still = _run(FlowWarp(), davis), _run(FirstMask(), davis)
    assert flow["mean"]["J"] > still["mean"]["J"] + 0.1


def test_person_track_picks_the_overlapping_person(clip):
    video, davis = clip
    segmenter = Segmenter(PeopleOracle(video), TemporalConfig(scene_cut=False, skip_still=False, jitter=False),
                          mask_size=(180, 320))
    s = _run(PersonTrackPick(segmenter=segmenter), davis)
    assert s["mean"]["J"] > 0.9  # the oracle's person 1, not the bystander box


def test_pick_people_rules():
    h, w = 40, 60
    a, b = person_mask(h, w, 15, 20, 0.8), person_mask(h, w, 45, 20, 0.8)
    got = pick_people([a, b], {1: shift(b, 0, 2), 2: np.zeros((h, w), bool)})
    assert np.array_equal(got[1], b) and not got[2].any()  # best overlap; no overlap at all -> empty
    got = pick_people([a], {1: shift(a, 0, 6), 2: shift(a, 0, 1)})  # one person, two claims: the better wins
    assert np.array_equal(got[2], a) and not got[1].any()


def test_method_registry():
    assert isinstance(make_method("first-mask"), Propagator)
    assert make_method("danmask.eval.vos_methods:FlowWarp").name == "flow-dis"


# --- the command --------------------------------------------------------------------------------------------

def test_cli_json_and_report(clip, tmp_path, capsys):
    _, davis = clip
    code = main(["eval", str(davis), "--vos", "-m", "first-mask", "-m", "flow-dis", "--json", "-q",
                 "-o", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert code == 0
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x["method"] for x in lines] == ["first-mask", "flow-dis"]
    assert set(lines[0]["per_sequence"]["walk"]) >= {"J", "F", "JF", "J_recall", "J_decay", "per_object"}
    assert (tmp_path / "rep" / "vos.md").is_file() and (tmp_path / "rep" / "walk_flow-dis.jpg").is_file()
    report = json.loads((tmp_path / "rep" / "vos.json").read_text())
    assert report["methods"][1]["mean"]["JF"] == pytest.approx(lines[1]["mean"]["JF"])
    assert main(["eval", str(davis), "--vos", "-m", "first-mask", "-q"]) == 0
    assert "first-mask  mean" in capsys.readouterr().out


def test_cli_overlays_without_later_truth(clip, tmp_path, capsys):
    """Two objects on the first frame only (palette PNG): no score, an overlay video and picture with -o."""
    _, davis = clip
    root = tmp_path / "crowd"
    img_dir, ann_dir = root / "JPEGImages" / "480p" / "two", root / "Annotations" / "480p" / "two"
    img_dir.mkdir(parents=True)
    ann_dir.mkdir(parents=True)
    for p in sorted((davis / "JPEGImages" / "480p" / "walk").glob("*.jpg"))[:6]:
        (img_dir / p.name).write_bytes(p.read_bytes())
    labels = np.zeros((180, 320), np.uint8)
    labels[10:60, 200:260], labels[100:170, 10:90], labels[0:5, 0:5] = 1, 2, 255  # 255: void, not an object
    im = Image.fromarray(labels, mode="P")
    im.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] + [255] * (253 * 3))
    im.save(ann_dir / "00000.png")
    assert main(["eval", str(root), "--vos", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing can be scored" in err
    assert main(["eval", str(root), "--vos", "-m", "flow-dis", "-q", "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "two_flow-dis.mp4").stat().st_size > 0 and (tmp_path / "o" / "two_flow-dis.jpg").is_file()
    summary = json.loads((tmp_path / "o" / "vos.json").read_text())["methods"][0]
    assert summary["unscored"] == ["two"] and summary["frames"] == 6


@pytest.mark.parametrize("args, message", [
    (["--vos", "-m", "no-such-method"], "unknown VOS method 'no-such-method'; choose from first-mask"),
    (["--vos", "-m", "nowhere.module:Thing"], "cannot import the VOS method"),
    (["--vos", "--masks", "m"], "--masks does not go with --vos"),
])
def test_cli_one_line_errors(clip, capsys, args, message):
    _, davis = clip
    assert main(["eval", str(davis), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_cli_not_davis(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--vos"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--vos needs a DAVIS layout" in err
