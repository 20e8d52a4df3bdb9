"""The player benchmark of `danmask bench` (own module: it starts its own Chromium, and Playwright's sync API
cannot run inside the module-scoped browser of test_player_browser)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_bench_player_fps_against_an_empty_page():
    from danmask.danmaku.browser import BrowserError, launch_chromium
    from danmask.eval.bench import player_fps

    try:
        with launch_chromium():
            pass
    except BrowserError as exc:
        pytest.skip(f"no browser: {exc}")
    r = player_fps(comments=50, seconds=1.0)
    assert "skipped" not in r, r
    assert r["page_fps"] > 0 and r["page_fps_no_comments"] > 0
    assert r["ratio_vs_no_comments"] == pytest.approx(r["page_fps"] / r["page_fps_no_comments"])
