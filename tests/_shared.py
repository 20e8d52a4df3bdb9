"""Where the research data lives for the tests that need it (never committed): ../shared/data beside the repo,
or $DANMASK_DATA. Tests that need it skip with a reason when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    for candidate in (os.environ.get("DANMASK_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    pytest.skip("needs ../shared/data (research data, not in the repo)")


def davis_frame(sequence: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(RGB frame, bool person mask) of a DAVIS person sequence."""
    import cv2

    root = shared_data() / "davis-people"
    rgb = cv2.imread(str(root / "JPEGImages" / "480p" / sequence / f"{index:05d}.jpg"))
    gt = cv2.imread(str(root / "Annotations" / "480p" / sequence / f"{index:05d}.png"), cv2.IMREAD_GRAYSCALE)
    if rgb is None or gt is None:
        pytest.skip(f"DAVIS {sequence}/{index:05d} is not in the shared data")
    return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB), gt > 127


def davis_sprite(sequence: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A person cut out of a DAVIS frame by its true mask: (RGB, float alpha), tight box."""
    rgb, gt = davis_frame(sequence, index)
    ys, xs = np.nonzero(gt)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return rgb[y0:y1, x0:x1].copy(), gt[y0:y1, x0:x1].astype(np.float32)


def add_tone(silent: Path, path: Path, seconds: float) -> None:
    """Remux the video of `silent` into `path` with a 440 Hz mono AAC tone of `seconds` (audio-keeping tests)."""
    from fractions import Fraction

    import av

    n = int(48000 * seconds)
    with av.open(str(silent)) as src, av.open(str(path), "w") as dst:
        v_out = dst.add_stream_from_template(src.streams.video[0])
        a_out = dst.add_stream("aac", rate=48000)
        a_out.layout = "mono"
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = v_out
                dst.mux(packet)
        samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            dst.mux(a_out.encode(frame))
        dst.mux(a_out.encode(None))
