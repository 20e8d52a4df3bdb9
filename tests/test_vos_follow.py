"""`danmask segment --keyframe ... --follow people`: given masks carried by person-track's tracked people, forward
and backward from each key frame (danmask.vos.follow)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from danmask.track import PersonLayer
from danmask.trackreader import TrackReader
from danmask.vos.follow import decide, walk


def box(x: int, shape=(20, 40)) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[5:15, x:x + 6] = 255
    return m


def test_each_object_follows_the_person_it_overlaps_both_ways_from_its_key_frame():
    # person 1 walks right two pixels a frame, person 2 stands still at the far right
    frames = [[PersonLayer(1, True, box(2 + 2 * i)), PersonLayer(2, True, box(32))] for i in range(8)]
    keys = {4: {7: box(10) >= 128}}  # object 7 is person 1 on frame 4
    forward = walk(range(8), frames.__getitem__, keys)
    backward = walk(range(7, -1, -1), frames.__getitem__, keys)
    assert sorted(forward) == [5, 6, 7] and sorted(backward) == [0, 1, 2, 3]
    assert all(c[7] == (1, abs(i - 4)) for i, c in {**forward, **backward}.items())
    # a frame where nobody overlaps: the object is empty there, and found again with its last mask
    frames[6] = [PersonLayer(2, True, box(32))]
    forward = walk(range(8), frames.__getitem__, keys)
    assert forward[6][7] == (0, 2) and forward[7][7] == (1, 3)


def test_the_nearer_key_frame_decides_and_a_person_is_never_given_twice():
    assert decide({7: (1, 3)}, {7: (2, 1)}) == {7: 2}
    assert decide({7: (1, 1)}, {7: (2, 4)}) == {7: 1}
    assert decide({7: (1, 2), 8: (1, 5)}, {}) == {7: 1, 8: 0}
    assert decide({}, {}) == {}


def test_cli_follows_the_parkour_runner_backward_from_the_last_frame(tmp_path):
    import av
    import cv2

    from _shared import davis_frame

    frames, truth = zip(*(davis_frame("parkour", i) for i in range(24)))
    clip = tmp_path / "parkour.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 854, 480, "yuv420p"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    key = tmp_path / "runner.png"
    Image.fromarray(truth[-1].astype(np.uint8) * 255).save(key)
    cmd = [sys.executable, "-m", "danmask.cli", "segment", str(clip), "-o", str(tmp_path / "out.dmask"),
           "--keyframe", f"23:{key}", "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with TrackReader(tmp_path / "out.dmask") as track:
        assert len(track) == 24 and track.ids() == [1]
        ious = []
        for (_, mask), t in zip(track.items(), truth):
            pred = cv2.resize(mask, (t.shape[1], t.shape[0])) >= 128
            ious.append((pred & t).sum() / max(1, (pred | t).sum()))
    assert np.mean(ious[:-1]) > 0.85, np.round(ious, 2)  # measured 0.91 over the whole sequence from frame 0
    memory = subprocess.run(cmd + ["--follow", "memory", "--json"], capture_output=True, text=True, timeout=600)
    assert memory.returncode == 0 and "memory network" in memory.stdout, memory.stderr
    damaged = tmp_path / "damaged.mkv"
    damaged.write_bytes(clip.read_bytes()[:clip.stat().st_size // 2])
    broken = subprocess.run([*cmd[:4], str(damaged), *cmd[5:]], capture_output=True, text=True, timeout=600)
    assert broken.returncode == 2 and "truncated or damaged" in broken.stderr, broken.stderr
    assert broken.stderr.count("\n") == 1 and "wrote" not in broken.stderr  # the scratch track is nobody's output
    nobody = tmp_path / "corner.png"  # a mask where no one stands: followed by no one, and the user is told
    corner = np.zeros_like(truth[0])
    corner[:20, :20] = True
    Image.fromarray(corner.astype(np.uint8) * 255).save(nobody)
    told = subprocess.run([*cmd[:-2], f"0:{nobody}", "-q"], capture_output=True, text=True, timeout=600)
    assert told.returncode == 0 and "overlaps no tracked person" in told.stderr, told.stderr
    bad = subprocess.run(cmd + ["--model", "fast"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "does not track people" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
