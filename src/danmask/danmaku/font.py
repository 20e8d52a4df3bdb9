"""The one CJK font both renderers use: found at run time, measured with Pillow, served to the web player.

The layout measures text with this file and the browser draws with the same file (served by `danmask play`
as a web font), so widths agree and Chinese/Japanese comments never show as tofu boxes. We do not bundle a
font in the repo; a system one is looked up (Debian: `apt-get install fonts-wqy-microhei`), then Noto Sans CJK
from the PyPI package `cvttf-notosanscjk-regular` (OFL; pulled in by the `demo` extra, so no root is needed),
or set DANMASK_FONT.
"""
from __future__ import annotations

import os
import shutil
import struct
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
INSTALL_HINT = ("install a CJK font (pip install 'danmask[demo]', or Debian/Ubuntu: apt-get install "
                f"fonts-wqy-microhei) or point {FONT_ENV} at a .ttf/.otf/.ttc file")
PIP_FONT_PACKAGE = "cvttf_NotoSansCJK_Regular"  # Noto Sans CJK TC Regular, OFL-1.1


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
                  *map(Path, SYSTEM_FONTS), *_pip_fonts(), *_fontconfig_match()]
    for candidate in candidates:
        if candidate.is_file():
            try:
                _check_cjk(candidate)
            except FontError:
                continue
            return candidate
    raise FontError(f"no CJK font found; {INSTALL_HINT}")


def _pip_fonts() -> list[Path]:
    """Font files of the pip-installed Noto Sans CJK package, located without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(PIP_FONT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.otf"))


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
    """Refuse fonts that would render CJK as the .notdef box."""
    coverage = GlyphCoverage(str(path))
    for ch in PROBE_TEXT:
        if not coverage.has(ch):
            raise FontError(f"font {path} has no CJK glyphs ({ch!r} would show as a box); {INSTALL_HINT}")


class GlyphCoverage:
    """Which characters a font can draw: a missing glyph renders as the same .notdef bitmap as an unassigned
    private-use code point (Pillow has no direct 'has glyph' query). Answers are cached per character."""

    PROBE_PX = 24

    def __init__(self, font_file: str) -> None:
        self._font = load_font(font_file, self.PROBE_PX)
        self._notdef = bytes(self._font.getmask("\ue000"))
        self._known: dict[str, bool] = {}

    def has(self, ch: str) -> bool:
        known = self._known.get(ch)
        if known is None:
            known = self._known[ch] = bytes(self._font.getmask(ch)) != self._notdef
        return known


@lru_cache(maxsize=64)
def load_font(path: str, px: int) -> ImageFont.FreeTypeFont:
    """A Pillow FreeType font at `px` pixels (cached: the layout and the renderer ask for few sizes)."""
    try:
        return ImageFont.truetype(path, px)
    except OSError as exc:
        raise FontError(f"cannot load font {path}: {exc}") from exc


def web_font_bytes(path: str | os.PathLike) -> bytes:
    """The font as a browser accepts it: a single sfnt with 4-byte aligned tables.

    Browsers' font sanitiser (OTS) rejects many distribution .ttc collections (e.g. WenQuanYi's misaligned
    FFTM table), so the first face of a collection is rewritten as a stand-alone font with the same tables,
    which is all the canvas needs to draw with the exact glyphs and advances Pillow measured.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"ttcf":
        return data
    try:
        (first_face,) = struct.unpack_from(">I", data, 12)
        sfnt_version, num_tables = struct.unpack_from(">IH", data, first_face)
        records = [struct.unpack_from(">4sIII", data, first_face + 12 + 16 * i) for i in range(num_tables)]
    except struct.error as exc:
        raise FontError(f"font {path}: damaged font collection ({exc})") from exc
    entry_selector = max(num_tables.bit_length() - 1, 0)
    search_range = 16 * (1 << entry_selector)
    header = struct.pack(">IHHHH", sfnt_version, num_tables, search_range, entry_selector,
                         num_tables * 16 - search_range)
    offset = len(header) + 16 * num_tables
    directory, tables = [], []
    for tag, checksum, table_offset, length in sorted(records):
        table = data[table_offset:table_offset + length]
        if len(table) != length:
            raise FontError(f"font {path}: table {tag.decode('latin-1')} is cut off")
        directory.append(struct.pack(">4sIII", tag, checksum, offset, length))
        padded = table + b"\0" * (-length % 4)
        tables.append(padded)
        offset += len(padded)
    return header + b"".join(directory) + b"".join(tables)
