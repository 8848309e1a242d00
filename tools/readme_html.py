"""static/description/index.html from the readme/ fragments: `make readme`.

OCA's oca-gen-addon-readme is not installed in this project's environment (it needs pandoc for
Markdown fragments), so this script does the same job with the Python standard library: it joins
the fragments in OCA's order (DESCRIPTION, INSTALL, CONFIGURE, USAGE, ROADMAP, HISTORY,
CONTRIBUTORS), adds the README's Support section and the manifest's author, and writes one
self-contained page that Odoo shows in the Apps description.

It converts the Markdown the fragments use, nothing more: ``##``/``###`` headings, paragraphs,
``-`` and ``1.`` lists (one level, continuation lines indented), fenced and indented code blocks,
pipe tables, and inline code, ``*em*``, ``**strong**``, links and images. Images are written under
``static/description/`` and referenced relative to the page (``screenshots/x.png``), which Odoo
turns into ``/microsoft_esd/static/description/screenshots/x.png``. Links to files of the
repository become their path in code, since Odoo cannot serve them.

``python3 tools/readme_html.py`` writes the page; ``--check`` exits 1 when the committed page is
not what the fragments make (tests/pure/test_readme_html.py runs the same check).
"""

import ast
import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "static" / "description" / "index.html"
# OCA's order and section titles (maintainer-tools' gen_addon_readme); DESCRIPTION has no title.
FRAGMENTS = (
    ("DESCRIPTION", None),
    ("INSTALL", "Installation"),
    ("CONFIGURE", "Configuration"),
    ("USAGE", "Usage"),
    ("ROADMAP", "Known issues / Roadmap"),
    ("HISTORY", "Changelog"),
)
DESCRIPTION_PREFIX = "../static/description/"  # a fragment's image path, relative to readme/
STYLE = """
body { font-family: sans-serif; line-height: 1.45; margin: 0 auto; max-width: 60em; padding: 1em; }
code, pre { font-family: monospace; background: #f6f6f6; }
pre { padding: 0.6em; overflow-x: auto; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.5em; vertical-align: top; }
"""


# ---------------------------------------------------------------------------------- inline
_CODE = re.compile(r"`([^`]+)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?![\s*])(.+?)(?<![\s*])\*(?![\w*])")


def _image_src(src):
    if src.startswith(DESCRIPTION_PREFIX):
        return src[len(DESCRIPTION_PREFIX) :]
    return src


def _is_external(url):
    return url.startswith(("http://", "https://", "mailto:", "#"))


def _repository_path(url):
    """A relative link of a fragment (or the README), as a path from the repository's root."""
    path = url.split("#", 1)[0]
    while path.startswith("../"):
        path = path[3:]
    return path.removeprefix("./")


def _text(text):
    """Escape, then images, links, strong and em (never inside code spans)."""
    text = html.escape(text, quote=False)

    def image(match):
        alt, src = match.group(1), _image_src(match.group(2))
        return (
            f'<img alt="{html.escape(alt)}" src="{html.escape(src)}" '
            'style="max-width: 100%; height: auto;" />'
        )

    def link(match):
        label, url = match.group(1), match.group(2)
        if _is_external(url):
            return f'<a href="{html.escape(url)}">{label}</a>'
        if re.fullmatch("\x00\\d+\x00", label):  # [`path`](path): the code span says it
            return label
        return f"{label} (<code>{html.escape(_repository_path(url))}</code>)"

    text = _IMAGE.sub(image, text)
    text = _LINK.sub(link, text)
    text = _STRONG.sub(r"<strong>\1</strong>", text)
    return _EM.sub(r"<em>\1</em>", text)


def inline(text):
    """Inline Markdown to HTML: code spans first, so nothing inside them is interpreted."""
    # Links whose label is code ([`x`](x)) keep their label: resolve links around code spans
    # by protecting the code spans with placeholders first.
    spans = []

    def protect(match):
        spans.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        return f"\x00{len(spans) - 1}\x00"

    text = _text(_CODE.sub(protect, text))
    return re.sub("\x00(\\d+)\x00", lambda match: spans[int(match.group(1))], text)


# ---------------------------------------------------------------------------------- blocks
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^([-*])\s+(.*)$")
_NUMBER = re.compile(r"^(\d+)\.\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _slug(title, used):
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"<[^>]+>", "", title).lower()).strip("-")
    slug = slug or "section"
    candidate, n = slug, 2
    while candidate in used:
        candidate, n = f"{slug}-{n}", n + 1
    used.add(candidate)
    return candidate


def markdown(text, heading_offset=0, ids=None, toc=None):
    """HTML for the Markdown subset the fragments use.

    ``heading_offset`` shifts heading levels; ``ids`` collects the anchors used in the page;
    ``toc`` (a list) receives (level, id, title) for each heading.
    """
    ids = set() if ids is None else ids
    lines = text.replace("\t", "    ").splitlines()
    out = []
    i = 0

    def paragraph_end(j):
        line = lines[j]
        return (
            not line.strip()
            or _HEADING.match(line)
            or _BULLET.match(line)
            or _NUMBER.match(line)
            or line.startswith("```")
            or line.startswith("|")
        )

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            code = "\n".join(lines[i + 1 : j])
            out.append(f"<pre>{html.escape(code, quote=False)}</pre>")
            i = j + 1
        elif line.startswith("    "):
            j = i
            block = []
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                block.append(lines[j][4:])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            out.append(f"<pre>{html.escape(chr(10).join(block), quote=False)}</pre>")
            i = j
        elif match := _HEADING.match(line):
            level = min(6, len(match.group(1)) + heading_offset)
            title = inline(match.group(2).strip())
            anchor = _slug(title, ids)
            if toc is not None:
                toc.append((level, anchor, title))
            out.append(f'<h{level} id="{anchor}">{title}</h{level}>')
            i += 1
        elif line.startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            head = "".join(f"<th>{inline(cell)}</th>" for cell in _cells(line))
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append("".join(f"<td>{inline(cell)}</td>" for cell in _cells(lines[i])))
                i += 1
            body = "".join(f"<tr>{row}</tr>" for row in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif _BULLET.match(line) or _NUMBER.match(line):
            ordered = bool(_NUMBER.match(line))
            pattern = _NUMBER if ordered else _BULLET
            items = []
            while i < len(lines) and (match := pattern.match(lines[i])):
                item = [match.group(2)]
                i += 1
                # Continuation lines are indented; a blank line followed by an indented line
                # stays in the item too.
                while i < len(lines):
                    if lines[i].startswith("  ") and lines[i].strip():
                        item.append(lines[i].strip())
                        i += 1
                    elif (
                        not lines[i].strip()
                        and i + 1 < len(lines)
                        and lines[i + 1].startswith("  ")
                        and lines[i + 1].strip()
                    ):
                        i += 1
                    else:
                        break
                items.append(f"<li>{inline(' '.join(item))}</li>")
                while i < len(lines) and not lines[i].strip():
                    if i + 1 < len(lines) and pattern.match(lines[i + 1]):
                        i += 1
                    else:
                        break
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
        else:
            j = i + 1
            while j < len(lines) and not paragraph_end(j):
                j += 1
            text_ = " ".join(part.strip() for part in lines[i:j])
            out.append(f"<p>{inline(text_)}</p>")
            i = j
    return "\n".join(out)


# ---------------------------------------------------------------------------------- the page
def _section(markdown_text, title):
    """The text under ``## title`` in a Markdown file, up to the next ``##`` heading."""
    match = re.search(
        rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown_text, re.MULTILINE | re.DOTALL
    )
    return match.group(1).strip() if match else ""


def render(root=ROOT):
    """The page, as text, from the fragments, the README's Support section and the manifest."""
    manifest = ast.literal_eval((root / "__manifest__.py").read_text(encoding="utf-8"))
    readme = root / "readme"
    ids = {"contents"}
    toc = []
    body = []
    description = ""
    for name, title in FRAGMENTS:
        path = readme / f"{name}.md"
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        if title is None:
            description = markdown(text, ids=ids)
            continue
        anchor = _slug(title, ids)
        toc.append((1, anchor, html.escape(title)))
        body.append(f'<h1 id="{anchor}">{html.escape(title)}</h1>')
        body.append(markdown(text, ids=ids, toc=toc))
    support = _section((root / "README.md").read_text(encoding="utf-8"), "Support")
    if support:
        anchor = _slug("Bug Tracker", ids)
        toc.append((1, anchor, "Bug Tracker"))
        body.append(f'<h1 id="{anchor}">Bug Tracker</h1>')
        body.append(markdown(support, ids=ids))
    anchor = _slug("Credits", ids)
    credit_lines = [f'<h1 id="{anchor}">Credits</h1>']
    toc.append((1, anchor, "Credits"))
    credit_lines.append('<h2 id="authors">Authors</h2>')
    authors = [a.strip() for a in manifest.get("author", "").split(",") if a.strip()]
    names = "".join(f"<li>{html.escape(author, quote=False)}</li>" for author in authors)
    credit_lines.append(f"<ul>{names}</ul>")
    contributors = readme / "CONTRIBUTORS.md"
    if contributors.exists():
        credit_lines.append('<h2 id="contributors">Contributors</h2>')
        credit_lines.append(markdown(contributors.read_text(encoding="utf-8"), ids=ids))
    if manifest.get("maintainers"):
        credit_lines.append('<h2 id="maintainers">Maintainers</h2>')
        names = "".join(f"<li>{html.escape(m)}</li>" for m in manifest["maintainers"])
        credit_lines.append(f"<ul>{names}</ul>")
    body.extend(credit_lines)
    contents = "".join(
        f'<li style="margin-left: {(level - 1) * 1.5}em;"><a href="#{anchor}">{title}</a></li>'
        for level, anchor, title in toc
        if level <= 2
    )
    name = html.escape(manifest["name"], quote=False)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8" />',
            f"<title>{name}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            '<div class="document">',
            f"<h1>{name}</h1>",
            "<!-- Generated by tools/readme_html.py from readme/*.md, README.md's Support section",
            "     and __manifest__.py: do not edit, run `make readme`. -->",
            f"<p><em>{html.escape(manifest.get('summary', ''), quote=False)}</em><br />",
            f"Version {html.escape(manifest['version'])}, license "
            f"{html.escape(manifest.get('license', ''))}.</p>",
            description,
            f'<h2 id="contents">Table of contents</h2>\n<ul>{contents}</ul>',
            *body,
            "</div>",
            "</body>",
            "</html>",
            "",
        ]
    )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    page = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != page:
            sys.stderr.write(
                f"{OUTPUT.relative_to(ROOT)} is not what readme/ makes: run `make readme`\n"
            )
            return 1
        return 0
    OUTPUT.write_text(page, encoding="utf-8")
    sys.stdout.write(f"wrote {OUTPUT.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
