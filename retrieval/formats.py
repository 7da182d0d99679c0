"""Turn Markdown, HTML and plain text into (title, url, plain body).

Bodies keep the document's structure as plain text: paragraphs are separated by a blank line, a heading
becomes a one-line paragraph and list items stay on their own lines, so the chunker can split on sections.
Markdown is parsed by markdown-it-py (CommonMark, GFM tables, front matter via mdit-py-plugins), HTML by
BeautifulSoup.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import yaml
from bs4 import BeautifulSoup, Tag
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parsed:
    """What a format parser extracts from one file."""

    title: str | None
    url: str | None
    body: str


def tidy(text: str) -> str:
    """Normalise whitespace: collapse spaces within lines, at most one blank line between paragraphs."""
    lines = [re.sub(r"[ \t\f\v\u00a0]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# --- Markdown ----------------------------------------------------------------------------------------
# CommonMark (+ GFM tables and strikethrough) parsed by markdown-it-py, front matter by mdit-py-plugins; what
# is hand-written below is only the mapping from its token stream to the plain-text body the chunker expects.

_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"]).use(front_matter_plugin)
_INLINE_SKIP = frozenset({"html_inline"})  # inline HTML tags and comments carry no text


def _front_matter(source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        logger.warning("ignoring unreadable front matter (%s)", exc)
        return {}
    return data if isinstance(data, dict) else {}


def _inline_text(tokens: list[Token] | None) -> str:
    """The text of an inline token's children: markup dropped, images as their alt text, breaks as newlines."""
    parts: list[str] = []
    for token in tokens or []:
        if token.type in ("text", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif token.children and token.type not in _INLINE_SKIP:  # an image's children are its alt text
            parts.append(_inline_text(token.children))
    return "".join(parts)


class _Body:
    """Plain-text lines, with a blank line wherever the source has one between two blocks (or a block must
    stand alone: headings, code blocks, rules), so paragraphs and list items keep their shape."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._last_end = 0
        self._break = False

    def add(self, text: str, where: list[int] | None, *, alone: bool = False) -> None:
        """Add a block's text; `where` is its source line range (None: it continues the previous block)."""
        start, end = where if where else (self._last_end, self._last_end)
        if self.lines and (alone or self._break or start > self._last_end):
            self.lines.append("")
        self.lines.extend(line.strip() for line in text.split("\n"))
        self._last_end, self._break = max(end, self._last_end), alone

    def separate(self, where: list[int] | None) -> None:
        """A block without text (a rule, the title, a comment) still separates what is around it."""
        self._break = True
        if where:
            self._last_end = max(where[1], self._last_end)


def parse_markdown(text: str) -> Parsed:
    """Plain text of a Markdown document.

    The title is the front matter's `title:`, else the first level-1 heading (which is then dropped from
    the body, as the title is prepended to every chunk anyway). `url:` comes from the front matter.
    Code blocks keep their content (commands matter in support answers) without the fences; a table row
    becomes one line of its cells; HTML blocks keep their text.
    """
    tokens = _MARKDOWN.parse(text.replace("\r\n", "\n"))
    meta: dict[str, Any] = {}
    title: str | None = None
    body = _Body()
    heading: str | None = None  # tag of the heading being read
    row: list[str] | None = None  # cells of the table row being read
    table: list[int] | None = None  # the table's source lines, until its first row is added (it spans them)
    for token in tokens:
        kind = token.type
        if kind == "front_matter":
            meta = _front_matter(token.content)
            title = str(meta["title"]).strip() if meta.get("title") else None
        elif kind == "heading_open":
            heading = token.tag
        elif kind == "heading_close":
            heading = None
        elif kind == "table_open":
            table = token.map
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            body.add(" ".join(cell for cell in row if cell), table)  # the rows are lines of one paragraph
            row = table = None
        elif kind == "inline":
            content = _inline_text(token.children).strip()
            if row is not None:
                row.append(" ".join(content.split()))
            elif heading == "h1" and title is None:
                title = " ".join(content.split())
                body.separate(token.map)
            elif heading is not None:
                body.add(" ".join(content.split()), token.map, alone=True)
            else:
                body.add(content, token.map)
        elif kind in ("fence", "code_block"):
            body.add(token.content.rstrip("\n"), token.map, alone=True)
        elif kind == "html_block":
            html = BeautifulSoup(token.content, "html.parser").get_text()
            if html.strip():
                body.add(html.strip(), token.map)
            else:
                body.separate(token.map)
        elif kind == "hr":
            body.separate(token.map)
    url = str(meta["url"]).strip() if meta.get("url") else None
    return Parsed(title=title or None, url=url, body=tidy("\n".join(body.lines)))


# --- HTML --------------------------------------------------------------------------------------------

_DROP_TAGS = ("script", "style", "nav", "noscript", "template", "svg", "iframe", "form", "button", "aside", "footer")
_BLOCK_TAGS = (
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "ul",
    "ol",
    "dl",
    "table",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "figure",
    "figcaption",
    "details",
    "summary",
    "hr",
)


def parse_html(text: str) -> Parsed:
    """Plain text of an HTML page, without scripts, styles, navigation, forms, asides and footers.

    The title is the first `<h1>` (the article's own heading; dropped from the body), else `<title>`.
    The URL is the `<link rel="canonical">` or `og:url`, when present.
    """
    soup = BeautifulSoup(text, "html.parser")
    url: str | None = None
    canonical = soup.find("link", rel="canonical")
    og_url = soup.find("meta", attrs={"property": "og:url"})
    if isinstance(canonical, Tag) and canonical.get("href"):
        url = str(canonical["href"]).strip()
    elif isinstance(og_url, Tag) and og_url.get("content"):
        url = str(og_url["content"]).strip()
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(["head", *_DROP_TAGS]):
        tag.decompose()

    title: str | None = None
    h1 = soup.find("h1")
    if isinstance(h1, Tag):
        title = h1.get_text(" ", strip=True) or None
        if title:
            h1.decompose()
    title = title or page_title or None

    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" ")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    for item in soup.find_all(["li", "dt", "dd", "tr"]):
        # list items and table rows are lines of their paragraph, not paragraphs of their own
        item.insert_before("\n")
    body = soup.get_text()
    return Parsed(title=title, url=url, body=tidy(body))


# --- Plain text --------------------------------------------------------------------------------------


def parse_text(text: str) -> Parsed:
    """A plain-text file; its first line is the title if it is short and followed by a blank line."""
    text = text.replace("\r\n", "\n").strip()
    first, _, rest = text.partition("\n")
    if first.strip() and len(first) <= 100 and rest.startswith("\n"):
        return Parsed(title=first.strip(), url=None, body=tidy(rest))
    return Parsed(title=None, url=None, body=tidy(text))
