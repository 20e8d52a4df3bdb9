"""Danmaku comment files -> validated `Comment` records, streaming and hostile-input safe.

Three formats are read, detected from the content, not the file name:

* Bilibili XML: ``<i><d p="time,mode,size,color,sendtime,pool,user,dmid[,level]">text</d>...</i>``.
  Parsed with expat chunk by chunk (the parser under xml.etree's iterparse), so memory does not grow with the
  raw file. DOCTYPE and entity declarations are rejected outright (the defusedxml rule): no billion laughs, no
  external entities.
* Bilibili-style JSON: a list of ``{"progress": ms, "mode", "fontsize", "color", "content", ...}`` objects (the
  web API's DanmakuElem fields), bare or under ``data`` / ``elems`` / ``data.elems``.
* DPlayer v3 JSON: ``{"code": 0, "data": [[time_s, type, color, author, text], ...]}``, type 0 scroll,
  1 top, 2 bottom.

A file that cannot be parsed raises CommentError naming the line; a bad single entry is skipped and counted in
`CommentFile.skipped` by reason. Text is kept as plain data; renderers must only hand it to text-drawing calls.
"""
from __future__ import annotations

import gzip
import io
import json
import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

from ..errors import CommentError

MODES = ("scroll", "reverse", "top", "bottom")
BILIBILI_MODES = {1: "scroll", 2: "scroll", 3: "scroll", 4: "bottom", 5: "top", 6: "reverse"}
DPLAYER_TYPES = {0: "scroll", 1: "top", 2: "bottom", "right": "scroll", "top": "top", "bottom": "bottom"}
DEFAULT_SIZE = 25  # Bilibili's "normal" size; sizes are relative to it
DEFAULT_COLOR = 0xFFFFFF
MAX_TEXT_CHARS = 200  # Bilibili caps comments at 100 characters; longer text is cut, not rejected
MAX_SIZE = 255
_CHUNK = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")  # newlines/tabs/controls -> one space (single-line danmaku)
_XML_ILLEGAL_BYTES = bytes(range(0x20)).replace(b"\t", b"").replace(b"\n", b"").replace(b"\r", b"")


@dataclass(slots=True)
class Comment:
    """One danmaku: shown at `time_s` seconds of the video timeline, `size` in Bilibili units (25 = normal)."""

    time_s: float
    mode: str
    text: str
    size: int = DEFAULT_SIZE
    color: int = DEFAULT_COLOR  # 0xRRGGBB
    user: str = ""
    id: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.time_s, (int, float)) and math.isfinite(self.time_s) and self.time_s >= 0):
            raise CommentError(f"comment time must be a finite number >= 0, got {self.time_s!r}")
        if self.mode not in MODES:
            raise CommentError(f"comment mode must be one of {MODES}, got {self.mode!r}")
        if not (isinstance(self.size, int) and 1 <= self.size <= MAX_SIZE):
            raise CommentError(f"comment size must be an integer in 1..{MAX_SIZE}, got {self.size!r}")
        if not (isinstance(self.color, int) and 0 <= self.color <= 0xFFFFFF):
            raise CommentError(f"comment colour must be 0xRRGGBB, got {self.color!r}")
        if not isinstance(self.text, str) or not self.text:
            raise CommentError("comment text must be a non-empty string")


@dataclass
class CommentFile:
    """What a comment file yielded: comments sorted by time, and how many entries were skipped and why."""

    comments: list[Comment]
    format: str
    skipped: Counter = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        parts = [f"{len(self.comments)} comments ({self.format})"]
        if self.skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
            parts.append(f"skipped {self.skipped_total}: {reasons}")
        return "; ".join(parts)


def clean_text(text: str) -> str:
    """One line of at most MAX_TEXT_CHARS characters; empty when nothing printable is left."""
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - 1] + "\u2026"
    return text


def load_comments(path: str | Path) -> CommentFile:
    """Read a Bilibili XML, Bilibili-style JSON or DPlayer v3 JSON file (detected from its content).

    The file may be gzip-compressed, or raw-deflate compressed as Bilibili's `list.so` endpoint sends it.

    Raises:
        CommentError: missing/unreadable file, empty file, malformed XML/JSON (with the line), DTDs or entities,
            damaged compression.
    """
    path = Path(path)
    try:
        with path.open("rb") as raw:
            fh = _decompressing(raw)
            head = fh.peek(4096)[:4096]
            first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
            if first == b"<":
                result = _parse_xml(fh, path)
            elif first in (b"[", b"{"):
                result = _parse_json(fh.read(), path)
            elif not first:
                raise CommentError(f"{path}: empty comment file")
            else:
                raise CommentError(f"{path}: not a comment file (expected Bilibili XML or JSON, starts with {first!r})")
    except OSError as exc:  # includes gzip.BadGzipFile
        raise CommentError(f"{path}: cannot read comment file ({exc.strerror or exc})") from exc
    except (zlib.error, EOFError) as exc:
        raise CommentError(f"{path}: damaged compressed comment file ({exc})") from exc
    result.comments.sort(key=lambda c: c.time_s)  # stable: equal times keep file order
    return result


def _decompressing(raw: io.BufferedReader) -> io.BufferedReader:
    """A buffered stream of the file's text: as it is, gunzipped, or inflated from raw deflate."""
    start = raw.peek(2)[:2]
    if start == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw), _CHUNK)
    if start[:1] and start[:1] not in b"<[{\xef \t\r\n":
        probe = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            text = probe.decompress(raw.peek(_CHUNK)[:_CHUNK], 64)
        except zlib.error:
            return raw  # not deflate either: let the format check report what it is
        if text.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"<", b"[", b"{"):
            return io.BufferedReader(_Inflater(raw), _CHUNK)
    return raw


class _Inflater(io.RawIOBase):
    """Raw-deflate decoding as a readable stream (what Bilibili's comment endpoint serves)."""

    def __init__(self, source: io.BufferedReader) -> None:
        self.source, self.inflate, self.pending = source, zlib.decompressobj(-zlib.MAX_WBITS), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            chunk = self.source.read(_CHUNK)
            if not chunk:
                self.pending = self.inflate.flush()
                if not self.pending:
                    return 0
                break
            self.pending = self.inflate.decompress(chunk)
        n = min(len(buffer), len(self.pending))
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


# ---------------------------------------------------------------- Bilibili XML (streaming expat)

class _XmlCollector:
    """expat callbacks: gather <d p="..."> elements into Comments, counting the bad ones."""

    def __init__(self, parser: expat.XMLParserType, path: Path) -> None:
        self.parser, self.path = parser, path
        self.comments: list[Comment] = []
        self.skipped: Counter = Counter()
        self.p: str | None = None
        self.text: list[str] = []
        self.depth_in_d = 0
        self.root: str | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.root is None:
            self.root = name
        if self.depth_in_d:
            self.depth_in_d += 1
        elif name == "d":
            self.depth_in_d, self.p, self.text = 1, attrs.get("p"), []

    def end(self, name: str) -> None:
        if not self.depth_in_d:
            return
        self.depth_in_d -= 1
        if self.depth_in_d == 0:
            self._finish("".join(self.text))

    def chars(self, data: str) -> None:
        if self.depth_in_d:
            self.text.append(data)

    def forbid(self, *_: Any) -> None:
        raise CommentError(f"{self.path}: line {self.parser.CurrentLineNumber}: DOCTYPE/entity declarations "
                           "are not allowed in comment files")

    def _finish(self, raw_text: str) -> None:
        fields_ = (self.p or "").split(",")
        if len(fields_) < 4:
            self.skipped["bad attributes"] += 1
            return
        try:
            time_s, mode_no, size, color = float(fields_[0]), int(fields_[1]), int(fields_[2]), int(fields_[3])
        except ValueError:
            self.skipped["bad attributes"] += 1
            return
        mode = BILIBILI_MODES.get(mode_no)
        if mode is None:
            self.skipped[f"mode {mode_no} (unsupported)"] += 1
            return
        user = fields_[6] if len(fields_) > 6 else ""
        dmid = fields_[7] if len(fields_) > 7 else ""
        _append(self.comments, self.skipped, time_s, mode, raw_text, size, color, user, dmid)


def _parse_xml(fh: Any, path: Path) -> CommentFile:
    parser = expat.ParserCreate()
    collector = _XmlCollector(parser, path)
    parser.StartElementHandler, parser.EndElementHandler = collector.start, collector.end
    parser.CharacterDataHandler = collector.chars
    parser.StartDoctypeDeclHandler = collector.forbid
    parser.EntityDeclHandler = collector.forbid
    parser.ExternalEntityRefHandler = collector.forbid
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    try:
        while chunk := fh.read(_CHUNK):
            # Real Bilibili dumps carry stray C0 control bytes that XML 1.0 forbids; in UTF-8 they can never be
            # part of a multi-byte character, so dropping them is safe and keeps one bad comment from sinking a file.
            parser.Parse(chunk.translate(None, _XML_ILLEGAL_BYTES), False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise CommentError(f"{path}: line {exc.lineno}: malformed XML ({expat.ErrorString(exc.code)})") from None
    except LookupError as exc:  # <?xml encoding="..."?> naming an encoding Python does not have
        raise CommentError(f"{path}: XML declares an unknown encoding ({exc})") from None
    if collector.root != "i" and not collector.comments:
        raise CommentError(f"{path}: XML root is <{collector.root}>, not a Bilibili danmaku file (<i><d p=...>)")
    return CommentFile(collector.comments, "bilibili-xml", collector.skipped)


# ---------------------------------------------------------------- JSON (Bilibili-style and DPlayer v3)

def _parse_json(raw: bytes, path: Path) -> CommentFile:
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise CommentError(f"{path}: comment JSON is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CommentError(f"{path}: line {exc.lineno}: malformed JSON ({exc.msg})") from None
    except RecursionError:
        raise CommentError(f"{path}: JSON nested too deeply to be a comment file") from None
    entries = _json_entries(doc)
    if entries is None:
        raise CommentError(f"{path}: JSON has no comment list (expected a list, or 'data' / 'elems' holding one)")
    comments: list[Comment] = []
    skipped: Counter = Counter()
    kinds: Counter = Counter()
    for entry in entries:
        if isinstance(entry, list):
            kinds["dplayer-json"] += 1
            _dplayer_entry(entry, comments, skipped)
        elif isinstance(entry, dict):
            kinds["bilibili-json"] += 1
            _bilibili_entry(entry, comments, skipped)
        else:
            skipped["not an object or array"] += 1
    fmt = kinds.most_common(1)[0][0] if kinds else "json"
    return CommentFile(comments, fmt, skipped)


def _json_entries(doc: Any) -> list | None:
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        return None
    for key in ("data", "elems", "danmaku", "comments"):
        value = doc.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            inner = _json_entries(value)
            if inner is not None:
                return inner
    return None


def _dplayer_entry(entry: list, out: list[Comment], skipped: Counter) -> None:
    """DPlayer v3: [time_s, type, color, author, text]."""
    if len(entry) < 5 or not isinstance(entry[4], str):
        skipped["bad entry"] += 1
        return
    mode = DPLAYER_TYPES.get(entry[1]) if isinstance(entry[1], (int, str)) else None
    if mode is None:
        skipped["unsupported type"] += 1
        return
    time_s, color = _number(entry[0]), _number(entry[2])
    if time_s is None or color is None or color != int(color):
        skipped["bad entry"] += 1
        return
    _append(out, skipped, time_s, mode, entry[4], DEFAULT_SIZE, int(color), str(entry[3]), "")


def _bilibili_entry(entry: dict, out: list[Comment], skipped: Counter) -> None:
    """DanmakuElem as JSON: progress in ms; protobuf-style omission of defaults is allowed."""
    text = entry.get("content", entry.get("text"))
    progress = _number(entry.get("progress", 0))
    mode_no, size, color = (_number(entry.get(k, d)) for k, d in
                            (("mode", 1), ("fontsize", DEFAULT_SIZE), ("color", DEFAULT_COLOR)))
    if not isinstance(text, str) or None in (progress, mode_no, size, color) or \
            any(v != int(v) for v in (mode_no, size, color)):
        skipped["bad entry"] += 1
        return
    mode = BILIBILI_MODES.get(int(mode_no))
    if mode is None:
        skipped[f"mode {int(mode_no)} (unsupported)"] += 1
        return
    ident = entry.get("idStr", entry.get("id", ""))
    _append(out, skipped, progress / 1000.0, mode, text, int(size), int(color),
            str(entry.get("midHash", "")), str(ident))


def _number(value: Any) -> float | None:
    """JSON numbers, or numeric strings (the API sends 64-bit ids and some fields as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _append(out: list[Comment], skipped: Counter, time_s: float, mode: str, text: str, size: int, color: int,
            user: str, ident: str) -> None:
    """Validate one entry; a failure is counted under its reason instead of stopping the file."""
    text = clean_text(text)
    if not text:
        skipped["empty text"] += 1
        return
    try:
        out.append(Comment(time_s, mode, text, size, color, user, ident))
    except CommentError:
        skipped["bad values"] += 1

