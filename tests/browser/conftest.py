"""Browser fixtures: one headless Chromium per module, and a player server per test. Skips cleanly when
Chromium or Playwright are missing (install: apt-get install chromium; pip install playwright)."""
from __future__ import annotations

import pytest

from danmask.danmaku.browser import BrowserError, find_chromium
from danmask.danmaku.font import find_font
from danmask.errors import FontError


@pytest.fixture(scope="module")
def browser():
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("Python package 'playwright' not installed (pip install playwright)")
    try:
        find_chromium()
        find_font()
    except (BrowserError, FontError) as exc:
        pytest.skip(str(exc))
    from danmask.danmaku.browser import launch_chromium

    with launch_chromium() as chromium:
        yield chromium
