"""The user documentation: the Apps page is made from readme/; the docs' links and images hold."""

import importlib.util
import re
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("readme_html", ROOT / "tools" / "readme_html.py")
readme_html = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(readme_html)

DOCS = [ROOT / "README.md", *sorted((ROOT / "readme").glob("*.md"))]
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def test_index_html_is_what_the_readme_fragments_make():
    page = (ROOT / "static" / "description" / "index.html").read_text(encoding="utf-8")
    assert page == readme_html.render(), "static/description/index.html is stale: run make readme"


def test_every_image_of_the_apps_page_is_under_static_description():
    page = readme_html.render()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert sources, "the Apps page shows no screenshot"
    for src in sources:
        # Odoo serves a relative src from /microsoft_esd/static/description/ (ir.module.module).
        assert "//" not in src and not src.startswith("/"), src
        assert (ROOT / "static" / "description" / src).is_file(), src


def test_every_relative_link_and_image_of_the_docs_exists():
    for doc in DOCS:
        for target in _LINK.findall(doc.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{doc.relative_to(ROOT)} links to a missing {target}"


def test_the_readme_fits_on_two_screens():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 100, f"README.md has {len(lines)} lines: move the details to readme/"


def test_the_icon_is_a_square_png():
    data = (ROOT / "static" / "description" / "icon.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height and width in (128, 256)


def test_the_markdown_subset():
    html = readme_html.markdown(
        "## Title\n\nA *word*, **bold**, `x < 1` and [docs](../docs/security.md).\n\n"
        "- one\n  continued\n- two\n\n1. first\n2. second\n\n"
        "| a | b |\n| --- | --- |\n| ![alt](../static/description/screenshots/x.png) | `c` |\n\n"
        "```\n<code>\n```\n\n    indented\n"
    )
    assert '<h2 id="title">Title</h2>' in html
    assert "A <em>word</em>, <strong>bold</strong>, <code>x &lt; 1</code>" in html
    assert "docs (<code>docs/security.md</code>)" in html
    assert "<ul><li>one continued</li><li>two</li></ul>" in html
    assert "<ol><li>first</li><li>second</li></ol>" in html
    assert 'src="screenshots/x.png"' in html
    assert "<td><code>c</code></td>" in html
    assert "<pre>&lt;code&gt;</pre>" in html
    assert "<pre>indented</pre>" in html
