"""Self-contained HTML reports (``report.html``) for a run folder and for a sweep report.

Everything the page shows is inside the one file: figures are inlined as base64 PNG, the video
(run.mp4, or run.gif) as a data URI, tables as HTML tables, styles inline; no script, font or
image is fetched from anywhere, so the page reads offline and can be mailed or archived.

    write_run_report(run_dir)                 # run_dir/report.html from summary.json + figures
    write_markdown_report(report_md)          # report.html beside a sweep's report.md
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sarlearn.atomic import atomic_write_bytes
from sarlearn.reports.templates import format_value, markup, render

#: File name of the report in a run or sweep-report folder.
REPORT = "report.html"

#: Figures of a run folder, in the order shown, with their captions.
RUN_FIGURES = (
    ("learning.png", "Error and moving sum of |e| against the success threshold"),
    ("path.png", "The robot's path on the track, early (red) and late (blue)"),
    ("weights.png", "Weight change per layer over time"),
)

#: Videos are embedded up to this size; a larger one is linked instead (keeps pages openable).
MAX_EMBED_BYTES = 40 * 1024 * 1024

_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
}

# The markup is in the templates of sarlearn/reports/templates/ (page, run report, macros).


# ---------------------------------------------------------------------- building blocks


def data_uri(path: str | Path) -> str:
    """The file as a ``data:`` URI (MIME type from the suffix)."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _figure(path: str | Path, caption: str = "") -> dict[str, str] | None:
    """What the ``figure`` macro shows for a file: an inlined image or video, or a link to a
    video too large to embed; None when the file is missing."""
    path = Path(path)
    if not path.is_file():
        return None
    video = path.suffix.lower() in (".mp4", ".webm")
    if video and path.stat().st_size > MAX_EMBED_BYTES:
        return {"kind": "link", "name": path.name, "src": "", "caption": caption}
    kind = "video" if video else "img"
    return {"kind": kind, "name": path.name, "src": data_uri(path), "caption": caption}


def figure_html(path: str | Path, caption: str = "") -> str:
    """An inlined image (or video) with its caption; empty when the file is missing."""
    f = _figure(path, caption)
    return "" if f is None else render("figure.html.j2", f=f).strip()


def table_html(rows: Iterable[Iterable[Any]], header: Iterable[Any] | None = None) -> str:
    """An HTML table; numbers are right-aligned."""
    return render("table.html.j2", rows=rows, header=header).strip()


def page(title: str, body: str) -> str:
    """A complete HTML document with the house style; ``body`` is HTML."""
    return render("page.html.j2", title=title, body=markup(body))


# ---------------------------------------------------------------------- a run


def run_report_html(run_dir: str | Path, summary: dict[str, Any] | None = None) -> str:
    """The HTML text of a run folder's report (``summary`` defaults to summary.json)."""
    run_dir = Path(run_dir)
    if summary is None:
        summary = json.loads((run_dir / "summary.json").read_text())
    s = summary
    heading = f"{s.get('rule')} on {Path(str(s.get('track'))).stem}, seed {s.get('seed')}"
    status = str(s.get("status"))
    loaded = s.get("loaded")
    loaded_rows: list[tuple[str, Any]] = []
    if loaded or s.get("frozen"):
        loaded_rows = [("frozen (no learning)", bool(s.get("frozen")))]
        if loaded:
            loaded_rows += [
                ("loaded from", loaded.get("path")),
                ("sha256", loaded.get("sha256")),
                ("saved network", loaded.get("network")),
                ("state restored", loaded.get("restored") or "weights only"),
            ]
    timing = s.get("timing") or {}  # a drive on a robot (sarlearn drive): its control cycles
    wc = s.get("weight_change") or []
    figures = [_figure(run_dir / name, cap) for name, cap in RUN_FIGURES]
    video = next((run_dir / v for v in ("run.mp4", "run.gif") if (run_dir / v).is_file()), None)
    if video is not None:
        figures.append(_figure(video, "The robot on the track (subsampled steps)"))
    return render(
        "run_report.html.j2",
        title=f"sarlearn: {heading}",
        heading=heading,
        status=status,
        status_class={"finished": "ok", "running": "warn", "interrupted": "warn"}.get(
            status, "bad"
        ),
        message=str(s.get("message") or ""),
        summary_rows=_summary_rows(s),
        loaded_rows=loaded_rows,
        timing_rows=[(k, v) for k, v in timing.items() if k != "warning"],
        timing_warning=str(timing.get("warning") or ""),
        weight_change=wc,
        weight_header=[*(f"layer {i + 1}" for i in range(len(wc) - 1)), "output"],
        figures=[f for f in figures if f is not None],
        problems=[str(p) for p in s.get("problems") or []],
        files=s.get("files", []),
        config_json=json.dumps(s.get("config", {}), indent=2),
        version=str(s.get("sarlearn_version", "")),
        python=str(s.get("python", "")),
        written_at=str(s.get("written_at", "")),
        folder=str(s.get("out_dir", run_dir)),
    )


def _summary_rows(s: dict[str, Any]) -> list[tuple[str, Any]]:
    keys = (
        ("rule", "rule"),
        ("learning rate", "lr"),
        ("layers", "layers"),
        ("track", "track"),
        ("inputs", "inputs"),
        ("seed", "seed"),
        ("steps run / requested", None),
        ("steps to success (first passage)", "steps_to_success"),
        ("settled step", "settled_step"),
        ("settled (end of the run clean)", "settled"),
        ("fraction above threshold (end)", "above_threshold_fraction"),
        ("relapses", "relapses"),
        ("steering flips per 1000 steps", "steering_flips_per_1000"),
        ("saturated steering fraction", "saturated_steering_fraction"),
        ("dead layers", "dead_layers"),
        ("mean |e|", "mean_abs_error"),
        ("mean |e| first 1000", "mean_abs_error_first_1000"),
        ("mean |e| last 1000", "mean_abs_error_last_1000"),
        ("final moving sum of |e|", "final_moving_sum"),
        ("off-track steps", "off_track_steps"),
        ("steps per second", "steps_per_second"),
    )
    rows: list[tuple[str, Any]] = []
    for label, key in keys:
        if key is None:
            steps = f"{format_value(s.get('steps'))} / {format_value(s.get('steps_requested'))}"
            rows.append((label, steps))
        elif key in s:
            rows.append((label, s[key]))
    return rows


def write_run_report(run_dir: str | Path, summary: dict[str, Any] | None = None) -> Path:
    """Write ``run_dir/report.html`` (atomically) and return its path."""
    path = Path(run_dir) / REPORT
    atomic_write_bytes(path, run_report_html(run_dir, summary).encode("utf-8"))
    return path


# ---------------------------------------------------------------------- a sweep report


_IMG = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str, base: Path) -> str:
    """Inline markdown: images (inlined from ``base``), links, **bold**, `code`, *em*."""
    out, pos = [], 0
    for m in _IMG.finditer(text):
        out.append(_inline_text(text[pos : m.start()]))
        target = base / m.group(2)
        if target.is_file():
            out.append(
                f'<img alt="{html.escape(m.group(1))}" src="{data_uri(target)}" '
                'style="max-width:100%">'
            )
        else:
            out.append(html.escape(m.group(0)))
        pos = m.end()
    out.append(_inline_text(text[pos:]))
    return "".join(out)


def _inline_text(text: str) -> str:
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"<em>\1</em>", t)
    return _LINK.sub(lambda m: f'<a href="{m.group(2)}">{m.group(1)}</a>', t)


def markdown_to_html(text: str, base: str | Path = ".") -> str:
    """The subset of markdown the reports use: headings, paragraphs, bullet lists, pipe tables,
    images (inlined from ``base``), code blocks, inline code, bold, emphasis, links."""
    base = Path(base)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", stripped):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2), base)}</h{n}>")
            i += 1
        elif stripped.startswith("|"):
            j = i
            rows = []
            while j < len(lines) and lines[j].strip().startswith("|"):
                cells = [c.strip() for c in lines[j].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                    rows.append(cells)  # (the |---|---| separator row is skipped)
                j += 1
            head, body = rows[0], rows[1:]
            out.append("<table>")
            out.append("<tr>" + "".join(f"<th>{_inline(c, base)}</th>" for c in head) + "</tr>")
            for r in body:
                tds = "".join(
                    f"<td{' class=num' if _numeric(c) else ''}>{_inline(c, base)}</td>" for c in r
                )
                out.append(f"<tr>{tds}</tr>")
            out.append("</table>")
            i = j
        elif re.match(r"[-*]\s+", stripped):
            out.append("<ul>")
            while i < len(lines) and re.match(r"\s*[-*]\s+", lines[i]):
                item = re.sub(r"^\s*[-*]\s+", "", lines[i])
                i += 1
                while i < len(lines) and lines[i].startswith("  ") and lines[i].strip():
                    item += " " + lines[i].strip()
                    i += 1
                out.append(f"<li>{_inline(item, base)}</li>")
            out.append("</ul>")
        else:
            para = [stripped]
            i += 1
            while i < len(lines) and lines[i].strip() and not _block_start(lines[i]):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para), base)}</p>")
    return "\n".join(out)


def _block_start(line: str) -> bool:
    s = line.strip()
    return bool(re.match(r"(#{1,6}\s|\||```|[-*]\s)", s))


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?", text.strip()))


def write_markdown_report(
    markdown: str | Path, out: str | Path | None = None, figures: Iterable[str | Path] = ()
) -> Path:
    """Turn a sweep's ``report.md`` (with its figures beside it) into a self-contained
    ``report.html`` in the same folder (or at ``out``); return its path. ``figures`` that the
    markdown does not show are added at the end."""
    md = Path(markdown)
    text = md.read_text(encoding="utf-8")
    title = next(
        (ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("#")),
        "sarlearn report",
    )
    body = markdown_to_html(text, md.parent)
    extra = [Path(f) for f in figures if f"]({Path(f).name})" not in text]
    if extra:
        body += "\n<h2>More figures</h2>\n" + "\n".join(figure_html(f, f.stem) for f in extra)
    path = Path(out) if out is not None else md.with_name(REPORT)
    atomic_write_bytes(path, page(title, body).encode("utf-8"))
    return path


__all__ = [
    "REPORT",
    "data_uri",
    "figure_html",
    "markdown_to_html",
    "page",
    "run_report_html",
    "table_html",
    "write_markdown_report",
    "write_run_report",
]
