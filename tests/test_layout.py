"""The layout engine: deterministic, never overlapping with anti-overlap on, settings honoured, drops counted."""
from __future__ import annotations

import itertools
import json

import pytest

from danmask.danmaku.comments import Comment
from danmask.danmaku.font import find_font, load_font
from danmask.danmaku.layout import GAP_PX, LayoutConfig, LayoutError, layout
from danmask.errors import FontError

try:
    FONT = str(find_font())
except FontError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(f"no CJK font installed ({exc})", allow_module_level=True)

SHAPE = (360, 640)  # (height, width)
MODES = ("scroll", "scroll", "scroll", "top", "bottom", "reverse")


def busy_comments(n: int = 400, per_second: float = 20.0) -> list[Comment]:
    """A dense, varied stream: all modes, three sizes, short and long, Latin and CJK text."""
    texts = ["哈哈哈", "前方高能！！", "this is a rather long english comment", "233", "好耶 nice", "弹幕护体"]
    return [Comment(i / per_second, MODES[i % 6], texts[i % 5] * (1 + i % 3), size=(18, 25, 36)[i % 3],
                    color=(i * 2654435761) % 0x1000000) for i in range(n)]


def boxes_at(schedule, t):
    return [(p.x_at(t), p.y, p.x_at(t) + p.width, p.y + p.height, p) for p in schedule.placements
            if p.start <= t < p.end]


def test_same_input_same_schedule():
    comments = busy_comments()
    a, b = layout(comments, SHAPE), layout(list(comments), SHAPE)
    assert a.to_json() == b.to_json()


def overlapping_pairs(schedule, t):
    return [(a, b) for (ax0, ay0, ax1, ay1, a), (bx0, by0, bx1, by1, b) in
            itertools.combinations(boxes_at(schedule, t), 2) if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1]


def test_anti_overlap_never_overlaps_and_counts_the_rest():
    comments = busy_comments()
    schedule = layout(comments, SHAPE)
    shown, dropped = len(schedule.placements), sum(schedule.dropped.values())
    assert shown + dropped == len(comments)
    assert dropped == schedule.dropped["no room"] > 0  # 20 comments/s do not all fit
    for step in range(0, 300):
        assert overlapping_pairs(schedule, step / 10) == [], f"overlap at t={step / 10}"


def test_same_lane_scrollers_keep_the_gap():
    comments = [Comment(0.0, "scroll", "short"), Comment(0.3, "scroll", "a much much longer and faster comment")]
    schedule = layout(comments, SHAPE, LayoutConfig(area=0.1))  # one lane only
    assert len(schedule.placements) + schedule.dropped["no room"] == 2
    if len(schedule.placements) == 2:  # the follower must never come within GAP_PX of the leader
        a, b = schedule.placements
        for t in [b.start + k * 0.01 for k in range(int((a.end - b.start) / 0.01))]:
            assert b.x_at(t) >= a.x_at(t) + a.width + GAP_PX - 1e-6


def test_without_anti_overlap_everything_is_shown():
    comments = busy_comments()
    schedule = layout(comments, SHAPE, LayoutConfig(anti_overlap=False))
    assert len(schedule.placements) == len(comments) and not schedule.dropped
    assert any(overlapping_pairs(schedule, step / 10) for step in range(300))  # the checker above can fail


def test_area_limits_the_lanes():
    schedule = layout(busy_comments(), SHAPE, LayoutConfig(area=0.5))
    assert schedule.placements
    assert max(p.y + p.height for p in schedule.placements) <= 0.5 * SHAPE[0]


def test_density_thins_evenly():
    comments = busy_comments(200, per_second=1.0)  # sparse: everything fits
    full = layout(comments, SHAPE)
    half = layout(comments, SHAPE, LayoutConfig(density=0.5))
    assert len(full.placements) == 200
    assert len(half.placements) == 100 and half.dropped["density"] == 100
    gaps = [b.start - a.start for a, b in zip(half.placements, half.placements[1:])]
    assert max(gaps) <= 2.0  # every other comment, not the first half
    assert not layout(comments, SHAPE, LayoutConfig(density=0.0)).placements


def test_max_on_screen():
    schedule = layout(busy_comments(), SHAPE, LayoutConfig(max_on_screen=5, anti_overlap=False))
    assert schedule.dropped["max on screen"] > 0
    for step in range(300):
        assert len(boxes_at(schedule, step / 10)) <= 5


def test_speed_and_duration():
    comment = [Comment(1.0, "scroll", "hello")]
    fixed_speed = layout(comment, SHAPE, LayoutConfig(speed_px_s=200)).placements[0]
    assert fixed_speed.vx == -200 and fixed_speed.x0 == SHAPE[1]
    assert fixed_speed.end == pytest.approx(1.0 + (SHAPE[1] + fixed_speed.width) / 200)
    by_duration = layout(comment, SHAPE, LayoutConfig(duration_s=5)).placements[0]
    assert by_duration.end - by_duration.start == pytest.approx(5)
    assert by_duration.x_at(by_duration.end) == pytest.approx(-by_duration.width)
    rev = layout([Comment(0, "reverse", "back")], SHAPE).placements[0]
    assert rev.vx > 0 and rev.x0 == -rev.width
    top = layout([Comment(0, "top", "fixed")], SHAPE, LayoutConfig(fixed_duration_s=3)).placements[0]
    assert top.vx == 0 and top.end == 3 and top.x0 == pytest.approx((SHAPE[1] - top.width) / 2) and top.y == 0
    bottom = layout([Comment(0, "bottom", "low")], SHAPE).placements[0]
    assert bottom.y + bottom.height <= SHAPE[0] and bottom.y > SHAPE[0] / 2


def test_widths_are_pillow_measurements_and_font_scale_applies():
    text = "弹幕 danmaku 測試"
    p1 = layout([Comment(0, "scroll", text)], SHAPE).placements[0]
    p2 = layout([Comment(0, "scroll", text)], SHAPE, LayoutConfig(font_scale=2)).placements[0]
    for p in (p1, p2):
        measured = load_font(FONT, p.font_px).getlength(text)
        assert abs(p.width - 2 * p.stroke_px - measured) <= 1.5
    assert p2.font_px == 2 * p1.font_px


def test_json_is_what_the_player_reads():
    schedule = layout(busy_comments(50), SHAPE)
    doc = json.loads(schedule.to_json())
    assert doc["width"] == 640 and doc["height"] == 360 and doc["shown"] == len(doc["items"])
    item = doc["items"][0]
    assert set(item) >= {"text", "start", "end", "x0", "vx", "y", "width", "height", "baseline", "font_px",
                         "stroke_px", "color", "stroke"}


def test_active_window_matches_brute_force():
    schedule = layout(busy_comments(), SHAPE)
    window = schedule.active()
    for step in range(250):
        t = step / 8
        expected = sorted(p.index for p in schedule.placements if p.start <= t < p.end)
        assert sorted(p.index for p in window.at(t)) == expected


@pytest.mark.parametrize("kwargs", [dict(area=0), dict(area=1.5), dict(density=-0.1), dict(opacity=2),
                                    dict(speed_px_s=0), dict(duration_s=float("nan")), dict(font_scale=0),
                                    dict(max_on_screen=0)])
def test_bad_settings(kwargs):
    with pytest.raises(LayoutError, match="invalid layout setting"):
        LayoutConfig(**kwargs)


def test_bad_size():
    with pytest.raises(LayoutError, match="video size"):
        layout([], (0, 10))


def test_characters_without_a_glyph_are_left_out_not_drawn_as_boxes():
    schedule = layout([Comment(0, "scroll", "再见 \U0001F44B"), Comment(1, "scroll", "\U0001F600\U0001F600"),
                       Comment(2, "top", "弹幕 ok")], SHAPE)
    assert [p.text for p in schedule.placements] == ["再见", "弹幕 ok"]
    assert schedule.dropped == {"no drawable characters": 1}
