"""Self-contained report.html (reports/html.py), read as text (the browser tests look)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from sarlearn.reports.html import markdown_to_html, write_markdown_report, write_run_report

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_markdown_subset() -> None:
    html = markdown_to_html(
        "# T\n\nSome *em*, **bold**, `x<y` and [a](b.html).\n\n| a | b |\n|---|---:|\n"
        "| 1 | two |\n\n- one\n  more\n- two\n\n```\nraw <b>\n```\n"
    )
    assert "<h1>T</h1>" in html
    assert "<em>em</em>" in html and "<strong>bold</strong>" in html
    assert "<code>x&lt;y</code>" in html and '<a href="b.html">a</a>' in html
    assert "<th>a</th><th>b</th>" in html and "<td class=num>1</td><td>two</td>" in html
    assert "---" not in html  # the separator row is not a data row
    assert "<li>one more</li>" in html and "<pre>raw &lt;b&gt;</pre>" in html


def test_sweep_page_inlines_every_figure(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(PNG)
    md = tmp_path / "report.md"
    md.write_text("# Sweep\n\n![a](a.png)\n\n![gone](missing.png)\n")
    page = write_markdown_report(md, figures=[tmp_path / "a.png", tmp_path / "b.png"])
    text = page.read_text()
    assert page.name == "report.html" and "<title>Sweep</title>" in text
    assert text.count("data:image/png;base64,") == 2  # a once (shown in the md), b added
    assert "More figures" in text and "![gone](missing.png)" in text  # shown, not broken


def test_run_page_is_self_contained(tmp_path: Path) -> None:
    (tmp_path / "learning.png").write_bytes(PNG)
    (tmp_path / "run.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    summary = {
        "rule": "sar",
        "track": "curvy",
        "seed": 2,
        "status": "finished",
        "steps": 100,
        "steps_requested": 100,
        "steps_to_success": None,
        "mean_abs_error": 0.25,
        "weight_change": [1.0, 0.5],
        "loaded": {"path": "/x/network.npz", "sha256": "ab" * 32, "network": "n", "restored": []},
        "frozen": True,
        "files": ["learning.png", "run.mp4"],
        "config": {"seed": 2},
        "problems": ["weights.png: boom <b>"],
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    text = write_run_report(tmp_path).read_text()
    assert "<h1>sar on curvy, seed 2</h1>" in text
    assert "data:image/png;base64," in text and "data:video/mp4;base64," in text
    assert "ab" * 32 in text and "frozen (no learning)" in text
    assert "boom &lt;b&gt;" in text  # escaped
    assert "<th>layer 1</th><th>output</th>" in text
    # Nothing to fetch: no http(s) resource, no src other than data: URIs.
    assert not re.search(r"""(src|href)=["']https?:""", text)
    assert all(v.startswith("data:") for v in re.findall(r'src="([^"]*)"', text))


def test_values_are_escaped_by_the_templates(tmp_path: Path) -> None:
    from sarlearn.reports.html import page, table_html

    t = table_html([("<b>", 1234.5, True)], header=("a&b", "n", "ok"))
    assert "&lt;b&gt;" in t and "a&amp;b" in t and '<td class="num">1,234</td>' in t
    assert "<td>yes</td>" in t
    doc = page("<script>x</script>", "<p>body</p>")
    assert "<title>&lt;script&gt;x&lt;/script&gt;</title>" in doc and "<p>body</p>" in doc


def test_every_template_ships_as_package_data() -> None:
    # An installed package has only the files pyproject's package-data names.
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["sarlearn.reports"]
    folder = root / "src" / "sarlearn" / "reports"
    files = [p.relative_to(folder).as_posix() for p in (folder / "templates").iterdir()]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files)
