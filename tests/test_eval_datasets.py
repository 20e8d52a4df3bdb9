"""Dataset readers on tiny folders built in tmp_path."""
import numpy as np
import pytest
from PIL import Image

from danmask.errors import DatasetError
from danmask.eval.datasets import load_dataset, read_mask


def write_rgb(path, h=12, w=16, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(path)


def write_mask(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def box(h=12, w=16):
    m = np.zeros((h, w), bool)
    m[3:9, 4:10] = True
    return m


def make_davis(root, with_csv=True):
    for seq, fg in (("dancer", True), ("swan", True), ("empty", False)):
        for i in range(3):
            write_rgb(root / "JPEGImages" / "480p" / seq / f"{i:05d}.jpg")
            write_mask(root / "Annotations" / "480p" / seq / f"{i:05d}.png", box() if fg else np.zeros((12, 16), bool))
    write_rgb(root / "JPEGImages" / "480p" / "dancer" / "00003.jpg")  # frame without annotation: not scored
    if with_csv:
        (root / "sequences.csv").write_text("sequence,category,n_frames\ndancer,person_only,3\nswan,no_person,3\n")


def test_read_mask_threshold_and_palette(tmp_path):
    Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)).save(tmp_path / "l.png")
    assert read_mask(tmp_path / "l.png").tolist() == [[False, False, True, True]]
    pal = Image.fromarray(np.array([[0, 1, 2, 0]], np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    pal.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png").tolist() == [[False, True, True, False]]
    Image.fromarray(np.array([[[0, 0, 0], [200, 0, 0]]], np.uint8)).save(tmp_path / "rgb.png")
    assert read_mask(tmp_path / "rgb.png").tolist() == [[False, True]]
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetError, match="bad.png"):
        read_mask(tmp_path / "bad.png")


def test_davis_with_categories(tmp_path):
    make_davis(tmp_path)
    seqs = {s.name: s for s in load_dataset(tmp_path)}
    assert set(seqs) == {"dancer", "swan", "empty"}
    assert seqs["dancer"].has_person and seqs["dancer"].length == 3
    assert not seqs["swan"].has_person  # csv says no_person although its masks are not empty
    assert not seqs["empty"].has_person  # not in csv: all-empty masks mean no person
    frames = list(seqs["swan"].frames())
    assert [f.frame_id for f in frames] == ["00000", "00001", "00002"]
    assert not any(f.gt.any() for f in frames)  # no-person ground truth is empty whatever the files hold
    dancer = list(seqs["dancer"].frames())
    assert dancer[0].rgb.shape == (12, 16, 3) and dancer[0].rgb.dtype == np.uint8
    assert (dancer[0].gt == box()).all()


def test_image_sequences_get_explicit_display_times(tmp_path):
    make_davis(tmp_path, with_csv=False)
    write_rgb(tmp_path / "JPEGImages" / "480p" / "swan" / "00001b.jpg")  # not a number: positions, and an
    seqs = {s.name: s for s in load_dataset(tmp_path)}                   # unannotated frame takes its slot
    assert [f.time for f in seqs["dancer"].frames()] == pytest.approx([0, 1 / 30, 2 / 30])  # DEFAULT_FPS
    assert [f.time for f in seqs["swan"].frames()] == pytest.approx([0, 1 / 30, 3 / 30])
    for i in (0, 3, 6):  # subsampled every 3rd frame, as named: the true spacing is kept
        write_rgb(tmp_path / "JPEGImages" / "480p" / "sub" / f"{i:05d}.jpg")
        write_mask(tmp_path / "Annotations" / "480p" / "sub" / f"{i:05d}.png", box())
    sub = next(s for s in load_dataset(tmp_path) if s.name == "sub")
    assert [f.time for f in sub.frames()] == pytest.approx([0, 0.1, 0.2])
    (tmp_path / "sequences.csv").write_text("sequence,category,fps\ndancer,person_only,24\nswan,no_person,\n")
    seqs = {s.name: s for s in load_dataset(tmp_path)}
    assert [f.time for f in seqs["dancer"].frames()] == pytest.approx([0, 1 / 24, 2 / 24])
    assert [f.time for f in seqs["swan"].frames()][1] == pytest.approx(1 / 30)  # empty cell: the default
    (tmp_path / "sequences.csv").write_text("sequence,category,fps\ndancer,person_only,-5\n")
    with pytest.raises(DatasetError, match="fps"):
        load_dataset(tmp_path)


def test_davis_without_csv_uses_masks(tmp_path):
    make_davis(tmp_path, with_csv=False)
    seqs = {s.name: s.has_person for s in load_dataset(tmp_path)}
    assert seqs == {"dancer": True, "swan": True, "empty": False}


def test_davis_other_resolution(tmp_path):
    make_davis(tmp_path)
    for part in ("JPEGImages", "Annotations"):
        (tmp_path / part / "480p").rename(tmp_path / part / "Full-Resolution")
    assert len(load_dataset(tmp_path)) == 3


def test_davis_bad_csv(tmp_path):
    make_davis(tmp_path, with_csv=False)
    (tmp_path / "sequences.csv").write_text("name,kind\nx,y\n")
    with pytest.raises(DatasetError, match="sequence"):
        load_dataset(tmp_path)


def test_image_folder(tmp_path):
    write_rgb(tmp_path / "images" / "a.jpg")
    write_mask(tmp_path / "masks" / "a.png", box())
    write_rgb(tmp_path / "images" / "b.jpg")
    write_mask(tmp_path / "masks" / "b.png", np.zeros((12, 16), bool))
    write_rgb(tmp_path / "images" / "orphan.jpg")
    seqs = load_dataset(tmp_path)
    assert [(s.name, s.has_person, s.length) for s in seqs] == [("a", True, 1), ("b", False, 1)]
    (frame,) = list(seqs[0].frames())
    assert frame.gt.sum() == 36 and frame.time == 0.0


def test_image_folder_mismatched_aspect(tmp_path):
    write_rgb(tmp_path / "images" / "a.jpg")
    write_mask(tmp_path / "masks" / "a.png", np.ones((16, 16), bool))
    with pytest.raises(DatasetError, match="aspect"):
        list(load_dataset(tmp_path)[0].frames())


def test_video_with_mask_folder(tmp_path):
    from danmask.synthetic import make_video

    clip = make_video(tmp_path / "clip.mp4", frames=6, shape=(48, 64))
    for i in (1, 2, 4):
        write_mask(tmp_path / "clip_masks" / f"frame_{i:03d}.png", clip.masks[i])
    (seq,) = load_dataset(tmp_path / "clip.mp4")
    assert seq.name == "clip" and seq.has_person and seq.length == 5
    frames = list(seq.frames())
    assert [f.frame_id for f in frames] == ["0", "1", "2", "3", "4"]
    assert [f.gt is not None for f in frames] == [False, True, True, False, True]
    assert (frames[2].gt == clip.masks[2]).all()
    assert frames[1].time == pytest.approx(1 / 30)
    # the same clip found as a folder of videos
    assert [s.name for s in load_dataset(tmp_path)] == ["clip"]


def test_video_mask_beyond_end(tmp_path):
    from danmask.synthetic import make_video

    make_video(tmp_path / "clip.mp4", frames=3, shape=(48, 64))
    write_mask(tmp_path / "m" / "00009.png", np.zeros((48, 64), bool))
    (seq,) = load_dataset(tmp_path / "clip.mp4", masks=tmp_path / "m")
    with pytest.raises(DatasetError, match="frame 9"):
        list(seq.frames())


def test_unknown_layouts(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="unknown layout"):
        load_dataset(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="video"):
        load_dataset(tmp_path / "notes.txt")
    (tmp_path / "v.mp4").write_bytes(b"")
    with pytest.raises(DatasetError, match="mask folder"):
        load_dataset(tmp_path / "v.mp4")
