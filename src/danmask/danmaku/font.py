"""The one CJK font both renderers use: found at run time, measured with Pillow, served to the web player.

The layout measures text with this file and the browser draws with the same file (served by `danmask play`
as a web font), so widths agree and Chinese/Japanese comments never show as tofu boxes. We do not bundle a
font; a system one is looked up (Debian: `apt-get install fonts-wqy-microhei`), or set DANMASK_FONT.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from ..errors import FontError

FONT_ENV = "DANMASK_FONT"
BUNDLED_DIR = Path(__file__).with_name("fonts")
# Known CJK fonts from distribution packages, best first (all redistributable: Apache-2.0 / OFL).
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch/Fedora layout
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/System/Library/Fonts/PingFang.ttc",  # macOS
    "C:/Windows/Fonts/msyh.ttc",  # Windows (Microsoft YaHei)
)
PROBE_TEXT = "弹幕"  # a font without these glyphs would draw tofu
INSTALL_HINT = ("install a CJK font (Debian/Ubuntu: apt-get install fonts-wqy-microhei) "
                f"or point {FONT_ENV} at a .ttf/.otf/.ttc file")


def find_font(path: str | os.PathLike | None = None) -> Path:
    """The font file to draw with: `path`, else $DANMASK_FONT, else a bundled or known system CJK font.

    Raises:
        FontError: the given file is missing/unreadable, or no CJK font is installed.
    """
    explicit = path or os.environ.get(FONT_ENV)
    if explicit:
        explicit = Path(explicit)
        if not explicit.is_file():
            raise FontError(f"font file {explicit} not found")
        _check_cjk(explicit)
        return explicit
    candidates = [*sorted(BUNDLED_DIR.glob("*.tt[fc]")), *sorted(BUNDLED_DIR.glob("*.otf")),
                  *map(Path, SYSTEM_FONTS), *_fontconfig_match()]
    for candidate in candidates:
        if candidate.is_file():
            try:
                _check_cjk(candidate)
            except FontError:
                continue
            return candidate
    raise FontError(f"no CJK font found; {INSTALL_HINT}")


def _fontconfig_match() -> list[Path]:
    """Ask fontconfig for a Chinese sans font when the known paths are missing."""
    fc_match = shutil.which("fc-match")
    if not fc_match:
        return []
    try:
        found = subprocess.run([fc_match, "-f", "%{file}", "sans-serif:lang=zh-cn"], capture_output=True,
                               text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return []
    return [Path(found)] if found else []


def _check_cjk(path: Path) -> None:
    """Refuse fonts that would render CJK as the .notdef box (same bitmap as a private-use code point)."""
    font = load_font(str(path), 32)
    notdef = bytes(font.getmask("\ue000"))
    for ch in PROBE_TEXT:
        if bytes(font.getmask(ch)) == notdef:
            raise FontError(f"font {path} has no CJK glyphs ({ch!r} would show as a box); {INSTALL_HINT}")


@lru_cache(maxsize=64)
def load_font(path: str, px: int) -> ImageFont.FreeTypeFont:
    """A Pillow FreeType font at `px` pixels (cached: the layout and the renderer ask for few sizes)."""
    try:
        return ImageFont.truetype(path, px)
    except OSError as exc:
        raise FontError(f"cannot load font {path}: {exc}") from exc
