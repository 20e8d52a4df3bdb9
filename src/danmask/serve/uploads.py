"""What an upload must be: no larger than the limit (counted as the bytes arrive, whatever Content-Length says)
and a video by its content (its first bytes, then a decoded first frame), never by its name or declared type."""
from __future__ import annotations

from pathlib import Path

from ..errors import DanmaskError, VideoError

# Container signatures: (offset, bytes) -> what the file is. The first frame is decoded afterwards anyway.
VIDEO_MAGIC = (
    (4, b"ftyp", ".mp4"), (0, b"\x1a\x45\xdf\xa3", ".mkv"), (8, b"AVI ", ".avi"), (0, b"FLV", ".flv"),
    (0, b"OggS", ".ogv"), (0, b"\x00\x00\x01\xba", ".mpg"), (0, b"\x30\x26\xb2\x75", ".wmv"), (4, b"moov", ".mov"),
    (4, b"mdat", ".mov"), (4, b"free", ".mov"), (4, b"wide", ".mov"),
)
OTHER_MAGIC = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
               (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"\x1f\x8b", "gzip data"),
               (b"ID3", "MP3 audio"), (b"fLaC", "FLAC audio"), (b"<", "markup (HTML or XML)"),
               (b"{", "JSON text"), (b"DMSK", "a danmask track"), (b"MASK", "a webmask"))


class UploadTooLarge(DanmaskError):
    """The request body went past the upload limit."""


class NotAVideo(DanmaskError):
    """The upload's content is not a video danmask can decode."""


def sniff(path: Path) -> str:
    """The suffix the upload gets (.mp4, .mkv, ...), from its content.

    Raises:
        NotAVideo: with a one-line reason (what it looks like instead, or why FFmpeg cannot decode it).
    """
    with path.open("rb") as fh:
        head = fh.read(4096)
    suffix = next((s for at, magic, s in VIDEO_MAGIC if head[at:at + len(magic)] == magic), None)
    if suffix is None and len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        suffix = ".ts"  # MPEG transport stream: a sync byte every 188 bytes
    if suffix is None:
        what = next((kind for magic, kind in OTHER_MAGIC if head.lstrip()[:len(magic)] == magic), None)
        if what is None:
            what = "empty" if not head else "text" if _is_text(head) else "unknown binary data"
        raise NotAVideo(f"not a video: the upload is {what}")
    from ..video import probe

    try:
        probe(path)
    except VideoError as exc:
        raise NotAVideo(f"not a video danmask can decode: {str(exc).replace(str(path) + ': ', '')}") from exc
    return suffix


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def receive_upload(request, limit: int, folder: Path) -> tuple[Path, str]:
    """Stream the multipart field `file` of `request` into a new file in `folder`; returns (its path, the name the
    client gave). Nothing is kept in memory beyond a chunk, and reading stops as soon as the body passes `limit`.

    Raises:
        UploadTooLarge: the body is (or says it is) larger than `limit` bytes.
        NotAVideo: no `file` field, or a body that is not multipart.
    """
    import shutil
    import tempfile

    from starlette.formparsers import MultiPartException, MultiPartParser

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(f"upload larger than the limit of {limit} bytes")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise NotAVideo("send the video as multipart/form-data in the field 'file'")

    async def limited():
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise UploadTooLarge(f"upload larger than the limit of {limit} bytes")
            yield chunk

    try:
        form = await MultiPartParser(request.headers, limited(), max_files=1, max_fields=8).parse()
    except MultiPartException as exc:
        raise NotAVideo(f"malformed upload: {exc.message}") from exc
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise NotAVideo("no file in the upload: send the video in the multipart field 'file'")
    fd, name = tempfile.mkstemp(dir=folder, suffix=".upload")
    with open(fd, "wb") as out:
        upload.file.seek(0)
        shutil.copyfileobj(upload.file, out, 1 << 20)
    await upload.close()
    return Path(name), upload.filename or "video"
