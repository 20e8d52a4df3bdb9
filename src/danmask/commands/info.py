"""`danmask info FILE`: what is in a video, a mask track (.dmask) or a .webmask."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

DESCRIPTION = """\
Describe FILE, recognised by its first bytes: a mask track (.dmask), a Bilibili .webmask, or a video
(anything FFmpeg reads). Tracks and webmasks are fully decoded, so every checksum and record is verified.
For a track with person layers (made by a person-tracking model) it lists each person id with the frames
they appear in and the frames in which they were salient (protected by the stored union).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="describe a video, a mask track or a webmask",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="video, .dmask or .webmask")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import DanmaskError

    path = Path(args.file)
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise DanmaskError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if magic == b"DMSK":
        facts = track_facts(path)
    elif magic == b"MASK":
        facts = webmask_facts(path)
    else:
        facts = video_facts(path)
    if args.json:
        print(_json(facts))
    else:
        width = max(len(k) for k in facts)
        for key, value in facts.items():
            if key == "damaged_blocks":
                value = len(value)
            elif key == "people":
                value = ", ".join(f"{p['id']} ({p['frames']} frame{'s' * (p['frames'] != 1)}, "
                                  f"{p['salient_frames']} salient)" for p in value) or "none"
            if key != "times":
                print(f"{key:<{width}}  {value}")
    damage = facts.get("damaged_blocks")
    if damage:
        more = f" (and {len(damage) - 1} more)" if len(damage) > 1 else ""
        raise DanmaskError(f"{path}: damaged: {damage[0]}{more}; the facts above describe the intact frames "
                           "(danmask export --salvage keeps them)")
    return 0


def _json(facts: dict) -> str:
    """One JSON object; a track's `times` (a generator, one number per frame) is written as it is read."""
    times = facts.pop("times", None)
    if times is None:
        return json.dumps(facts)
    return json.dumps(facts)[:-1] + ', "times": [' + ", ".join(json.dumps(t) for t in times) + "]}"


def track_facts(path: Path) -> dict:
    """What `info` says about a track, reading it one block at a time (memory stays flat for any length)."""
    from ..trackreader import TrackReader

    track = TrackReader(path, salvage=True)
    count, covered = 0, 0.0
    for _, mask in track.items():
        count += 1
        covered += float((mask >= 128).mean())
    people = [{"id": pid, "frames": frames, "salient_frames": salient}
              for pid, (frames, salient) in track.person_frames().items()]
    size = path.stat().st_size
    return {
        "kind": f"mask track (.dmask v{track.version})", "file": str(path), "frames": len(track),
        "duration_s": round(track.duration_s, 3), "mask_size": f"{track.mask_size[1]}x{track.mask_size[0]}",
        "source_size": f"{track.source_size[1]}x{track.source_size[0]}", "time_base": str(track.time_base),
        "first_time_s": round(float(track.pts_at(0) * track.time_base), 3) if len(track) else None,
        "bytes": size, "kb_per_minute": round(size / 1000 / track.duration_s * 60, 1) if track.duration_s else None,
        "mean_person_fraction": round(covered / count, 4) if count else 0.0,
        "person_layers": track.has_people, "people": people,
        "damaged_blocks": track.damage,
        "times": (round(float(pts * track.time_base), 6) for pts, _ in track.items()),
    }


def webmask_facts(path: Path) -> dict:
    import re

    from ..errors import TrackError
    from ..webmask import parse_webmask

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrackError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    parsed = parse_webmask(data, str(path))
    stamps = [ms for ms, _ in parsed.records]
    view = re.search(r'viewBox="([^"]*)"', parsed.records[0][1]) if parsed.records else None
    duration = (stamps[-1] - stamps[0]) / 1000 if len(stamps) > 1 else 0.0
    return {
        "kind": f"Bilibili webmask (version {parsed.version})", "file": str(path), "bytes": len(data),
        "segments": len(parsed.segments), "records": len(stamps),
        "first_ms": stamps[0] if stamps else None, "last_ms": stamps[-1] if stamps else None,
        "viewbox": view.group(1) if view else None,
        "kb_per_minute": round(len(data) / 1000 / duration * 60, 1) if duration else None,
    }


def video_facts(path: Path) -> dict:
    from ..video import probe

    info = probe(path)
    return {
        "kind": "video", "file": str(path), "size": f"{info.width}x{info.height}", "rotation": info.rotation,
        "codec": info.codec, "avg_fps": float(info.avg_fps) if info.avg_fps else None,
        "duration_s": round(info.duration_s, 3) if info.duration_s is not None else None,
        "frames": info.frames, "time_base": str(info.time_base), "has_audio": info.has_audio,
    }
