"""`danmask eval --report DIR`: an HTML page with plots and overlay strips of each model's worst frames.

Plots use matplotlib's Agg backend (the `eval` extra), imported here only, so plain `danmask eval` does not
need it. Overlays colour every pixel by outcome: green = person found, red = false person, blue = missed person.
"""
from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from ..errors import DanmaskError, OutputError
from ..outputs import check_folder
from .runner import ModelResult, Snapshot

TINT = {"hit": (40, 200, 60), "false": (230, 40, 40), "missed": (40, 90, 240)}
STRIP_COLUMNS = 4
MAX_BARS = 30  # sequences; beyond this a per-sequence bar chart is unreadable, so sorted curves are drawn


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise DanmaskError("the HTML report (-o) needs matplotlib: pip install 'danmask[eval]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def overlay(snap: Snapshot) -> np.ndarray:
    """The frame with each pixel tinted by outcome (see module docstring)."""
    out = snap.rgb.astype(np.float32)
    for key, where in (("hit", snap.pred & snap.gt), ("false", snap.pred & ~snap.gt), ("missed", ~snap.pred & snap.gt)):
        out[where] = 0.45 * out[where] + 0.55 * np.array(TINT[key], np.float32)
    return out.astype(np.uint8)


def _captioned(snap: Snapshot) -> np.ndarray:
    """The overlay under a two-line caption: the score, then where the frame comes from (cut to fit)."""
    tile = overlay(snap)
    bar = np.full((38, tile.shape[1], 3), 255, np.uint8)
    name = snap.sequence if snap.frame_id == snap.sequence else f"{snap.sequence}/{snap.frame_id}"
    fits = max(4, tile.shape[1] // 7)
    if len(name) > fits:
        name = ".." + name[-(fits - 2):]
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(bar, f"{snap.score_name} {snap.score:.2f}", (4, 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(bar, name, (4, 32), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def strip(snaps: list[Snapshot]) -> np.ndarray:
    """Tiles in rows of STRIP_COLUMNS, padded white, 4 px gutters."""
    tiles = [_captioned(s) for s in snaps]
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    rows = []
    for i in range(0, len(tiles), STRIP_COLUMNS):
        row = np.full((h + 4, (w + 4) * STRIP_COLUMNS, 3), 255, np.uint8)
        for j, t in enumerate(tiles[i:i + STRIP_COLUMNS]):
            row[2:2 + t.shape[0], j * (w + 4) + 2:j * (w + 4) + 2 + t.shape[1]] = t
        rows.append(row)
    return np.vstack(rows)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name)[:60] or "model"


def _grouped_bars(ax, names: list[str], results: list[ModelResult], values) -> None:
    width = 0.8 / max(1, len(results))
    x = np.arange(len(names))
    for i, r in enumerate(results):
        ys = [values(r).get(n) for n in names]
        ax.bar(x + i * width - 0.4 + width / 2, [np.nan if y is None else y for y in ys], width,
               label=Path(r.model).name)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def _sorted_curves(ax, summaries: list[dict], key: str) -> None:
    for s in summaries:
        values = sorted(v for v in s[key].values() if v is not None)
        ax.plot(np.linspace(0, 1, len(values)), values, label=Path(s["model"]).name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _save(plt, fig, out: Path, name: str, caption: str) -> tuple[str, str]:
    """Write one figure of the report and free it; returns (file name, caption) for the page."""
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name, caption


def _per_sequence(ax, names: list[str], results: list[ModelResult], summaries: list[dict], key: str,
                  sorted_label: str) -> bool:
    """Grouped bars per sequence, or, with too many sequences for bars, each model's values sorted as a curve.
    Returns True when it drew curves."""
    if len(names) <= MAX_BARS:
        _grouped_bars(ax, names, results, lambda r: r.summary()[key])
        return False
    _sorted_curves(ax, summaries, key)
    ax.set_xlabel(sorted_label)
    return True


def _plots(plt, results: list[ModelResult], summaries: list[dict], out: Path) -> list[tuple[str, str]]:
    made = []
    person = sorted({n for s in summaries for n in s["per_sequence"]})
    if person:
        fig, ax = plt.subplots(figsize=(min(14, max(6, 0.9 * len(person) + 2)), 4))
        curves = _per_sequence(ax, person, results, summaries, "per_sequence", "sequences, sorted by IoU (share of all)")
        ax.set_title(f"IoU per sequence, {len(person)} sequences sorted" if curves else "IoU per sequence")
        ax.set_ylim(0, 1)
        ax.set_ylabel("IoU (mean over frames)")
        made.append(_save(plt, fig, out, "iou_per_sequence.png", "IoU per person sequence and model"))
    timed = [s for s in summaries if s["median_ms"] is not None and s["mean_iou"] is not None]
    if timed:
        fig, ax = plt.subplots(figsize=(6, 4))
        for i, s in enumerate(sorted(timed, key=lambda s: s["median_ms"])):
            ax.scatter(s["median_ms"], s["mean_iou"], s=40)
            ax.annotate(Path(s["model"]).name, (s["median_ms"], s["mean_iou"]), fontsize=8,
                        xytext=(5, 6 if i % 2 == 0 else -12), textcoords="offset points")  # neighbours alternate
        ax.set_xlabel("model latency, median ms (1 thread)")
        ax.set_ylabel("mean IoU")
        low, high = min(s["median_ms"] for s in timed), max(s["median_ms"] for s in timed)
        if high > 10 * low:  # peers differ by orders of magnitude: a log axis keeps the fast ones apart
            ax.set_xscale("log")
            ax.set_xlim(low / 1.5, high * 3)
        else:
            ax.set_xlim(0, 1.4 * high)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_title("Quality vs speed (up-left is better)")
        made.append(_save(plt, fig, out, "iou_vs_latency.png", "Mean IoU against model latency"))
    temporal = sorted({n for s in summaries for n in s["per_sequence_temporal_error"]})
    if temporal:
        bars = min(len(temporal), MAX_BARS)
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(min(16, max(8, 0.9 * bars + 5)), 4),
                                       gridspec_kw={"width_ratios": [max(2, bars), 2]})
        _per_sequence(ax1, temporal, results, summaries, "per_sequence_temporal_error", "sequences, sorted (share of all)")
        ax1.set_ylabel("temporal error (RMS, GT-relative)")
        ax1.set_title("Temporal error per sequence (lower is better)")
        names = [Path(s["model"]).name for s in summaries]
        ax2.bar(names, [np.nan if s["flicker"] is None else s["flicker"] for s in summaries], color="tab:gray")
        ax2.set_title("Flicker (lower is better)")
        ax2.set_ylabel("1 - IoU of consecutive masks")
        ax2.tick_params(axis="x", labelrotation=35, labelsize=8)
        ax2.grid(axis="y", alpha=0.3)
        made.append(_save(plt, fig, out, "temporal.png", "Temporal stability"))
    empty = sorted({n for s in summaries for n in s["per_sequence_fp_frac"]})
    if empty:
        fig, ax = plt.subplots(figsize=(min(14, max(6, 0.9 * len(empty) + 2)), 4))
        _per_sequence(ax, empty, results, summaries, "per_sequence_fp_frac",
                      "sequences, sorted by FP fraction (share of all)")
        ax.set_ylabel("share of pixels predicted as person")
        ax.set_title("False positives on frames without people (lower is better)")
        made.append(_save(plt, fig, out, "fp_per_sequence.png", "False-positive fraction per no-person sequence"))
    return made


def _fmt(v, pattern: str = "{:.3f}") -> str:
    return "–" if v is None else pattern.format(v)


RETESTS = {"stability": ("Stability", "IoU on copies of the data no viewer could tell apart (--stability)"),
           "camera": ("Camera moves", "IoU with the camera moving in ways no rule was written for (--camera)")}


def write_report(results: list[ModelResult], out_dir: str | Path, dataset: str,
                 retests: dict[str, list[dict]] | None = None) -> Path:
    """Write index.html + PNGs into out_dir (created); returns the HTML path. `retests`: per kind in RETESTS,
    one figures dict of `perturb.rescore` per result, in the results' order."""
    plt = _pyplot()
    out = check_folder(out_dir)
    try:
        return _write(plt, results, out, dataset, retests or {})
    except OSError as exc:
        raise OutputError(f"{out}: cannot write report ({exc.strerror or exc})") from exc


def _retest_table(kind: str, summaries: list[dict], figures: list[dict]) -> str:
    """Per model and person sequence: the IoU as measured and on each re-scored copy."""
    title, what = RETESTS[kind]
    names = figures[0]["perturbations"] if figures else []
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for s, fig in zip(summaries, figures):
        rows.append(f"<tr><td>{html.escape(s['model'])}</td><td>mean</td><td>{_fmt(s['mean_iou'])}</td>"
                    + "".join(f"<td>{_fmt(fig['mean_iou'].get(n))}</td>" for n in names) + "</tr>")
        for seq, iou in s["per_sequence"].items():
            moved = fig["per_sequence"].get(seq, {})
            rows.append(f"<tr><td></td><td>{html.escape(seq)}</td><td>{_fmt(iou)}</td>"
                        + "".join(f"<td>{_fmt(moved.get(n))}</td>" for n in names) + "</tr>")
    return (f"<h2>{title}</h2><p>{html.escape(what)}.</p><table><tr><th>model</th><th>sequence</th>"
            f"<th>as measured</th>{head}</tr>{''.join(rows)}</table>")


def _write(plt, results: list[ModelResult], out: Path, dataset: str, retests: dict[str, list[dict]]) -> Path:
    summaries = [r.summary() for r in results]
    plots = _plots(plt, results, summaries, out)
    rows = "".join(
        f"<tr><td>{html.escape(s['model'])}</td><td>{_fmt(s['mean_iou'])}</td><td>{_fmt(s['boundary_f'])}</td>"
        f"<td>{_fmt(s['temporal_error'], '{:.4f}')}</td><td>{_fmt(s['flicker'], '{:.4f}')}</td>"
        f"<td>{_fmt(s['fp_frac'], '{:.2%}')}</td><td>{_fmt(s['median_ms'], '{:.2f}')}</td>"
        f"<td>{_fmt(s['median_ms_2t'], '{:.2f}')}</td><td>{_fmt(s['fps_pipeline'], '{:.1f}')}</td>"
        f"<td>{s['frames']}</td></tr>" for s in summaries)
    figures = "".join(f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}'
                      "</figcaption></figure>" for name, title in plots)
    strips = []
    for r in results:
        for kind, snaps in (("person", r.worst_person), ("no_person", r.worst_no_person)):
            if not snaps:
                continue
            name = f"worst_{kind}_{_slug(r.model)}.png"
            if not cv2.imwrite(str(out / name), cv2.cvtColor(strip(snaps), cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write {name}")
            what = "lowest IoU" if kind == "person" else "most false positives"
            strips.append(f"<h3>{html.escape(r.model)}: {what}</h3><img src=\"{name}\" alt=\"worst frames\">")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>danmask eval: {html.escape(dataset)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em}}img{{max-width:100%}}</style></head><body>
<h1>danmask eval</h1>
<p>Dataset <code>{html.escape(dataset)}</code>, {datetime.now().strftime('%Y-%m-%d %H:%M')}. Every model ran through the
same Segmenter; masks were upsampled bilinearly to the annotation size and thresholded at 0.5. Scores are means over
sequences. IoU and boundary F on frames with a person; FP = share of pixels marked as person on frames without one;
temporal error = RMS of (change of prediction - change of truth) between consecutive frames; flicker = 1 - IoU of
consecutive predictions.</p>
<table><tr><th>model</th><th>IoU</th><th>boundary F</th><th>temporal err</th><th>flicker</th><th>FP</th>
<th>ms (1 thread)</th><th>ms (2 threads)</th><th>pipeline fps</th><th>frames</th></tr>{rows}</table>
{figures}
{''.join(_retest_table(kind, summaries, figs) for kind, figs in retests.items())}
<h2>Worst frames</h2>
<p>Green: person found. <span style="color:#e62828">Red: marked as person but is not.</span>
<span style="color:#285af0">Blue: person missed.</span></p>
{''.join(strips)}
</body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
