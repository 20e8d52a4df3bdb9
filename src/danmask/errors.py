"""Typed errors. The CLI turns every DanmaskError into a one-line message and exit code 2."""


class DanmaskError(Exception):
    """Base class of every error danmask raises on purpose."""


class VideoError(DanmaskError):
    """A video cannot be opened or decoded (missing, corrupt, truncated, no video stream)."""


class ModelError(DanmaskError):
    """A model name is unknown, a model file is broken, or its backend is not installed."""


class TrackError(DanmaskError):
    """A mask track (.dmask) or .webmask file is malformed or damaged."""


class CommentError(DanmaskError):
    """A comment (danmaku) file cannot be parsed."""


class DatasetError(DanmaskError):
    """An evaluation or training dataset folder does not have the expected layout."""


class FontError(DanmaskError):
    """No usable font for drawing comments (a CJK-capable font is needed to avoid tofu boxes)."""


class OutputError(DanmaskError):
    """An output cannot be written: a missing or read-only folder, a folder where a file goes, a full disk."""


class DanmaskWarning(UserWarning):
    """Something was skipped but the work goes on (e.g. a broken model sidecar); the CLI prints it as one line."""
