"""Every JavaScript module the player page imports is one both servers send: a module added to web/ and imported,
but left off the list, would break the page only in a browser, and only on the path that loads it."""
from __future__ import annotations

import re

from danmask.danmaku.player import STATIC_DIR, WEB_DIR, WEB_MODULES
from danmask.serve.app import PLAYER_FILES

IMPORT = re.compile(r"""(?:from\s+|import\s*\(\s*)["']\./([\w.-]+\.js)["']""")


def imported_modules() -> set[str]:
    """Relative modules named by static (`from "./x.js"`) and dynamic (`import("./x.js")`) imports, outside comments."""
    names = set()
    for path in [STATIC_DIR / "player.js", *WEB_DIR.glob("*.js")]:
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("//"))
        names |= set(IMPORT.findall(code))
    return names


def test_every_imported_module_is_served_by_both_servers():
    imported = imported_modules()
    assert {"dmask.js", "segment.js", "temporal.js", "zoom.js"} <= imported  # the pattern finds both import forms
    assert imported <= set(WEB_MODULES)
    assert set(WEB_MODULES) <= set(PLAYER_FILES)
    assert all((WEB_DIR / name).is_file() for name in WEB_MODULES)
