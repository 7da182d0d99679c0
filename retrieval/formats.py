"""Turn Markdown, HTML and plain text into (title, url, plain body).

Bodies keep the document's structure as plain text: paragraphs are separated by a blank line, a heading
becomes a one-line paragraph and list items stay on their own lines, so the chunker can split on sections.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import yaml
from bs4 import BeautifulSoup, Tag

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

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_RULE = re.compile(r"^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$")
_LIST_MARKER = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,3}[.)])[ \t]+")
_REF_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*\S+.*$")
_INLINE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # <https://autolink>
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline HTML tags
    (re.compile(r"`([^`]+)`"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_]+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>])"), r"\1"),  # backslash escapes
)


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        logger.warning("ignoring unreadable front matter (%s)", exc)
        return {}, text[match.end() :]
    return (data if isinstance(data, dict) else {}), text[match.end() :]


def _strip_inline(line: str) -> str:
    for pattern, replacement in _INLINE_RULES:
        line = pattern.sub(replacement, line)
    return line


def parse_markdown(text: str) -> Parsed:
    """Plain text of a Markdown document.

    The title is the front matter's `title:`, else the first level-1 heading (which is then dropped from
    the body, as the title is prepended to every chunk anyway). `url:` comes from the front matter.
    Code blocks keep their content (commands matter in support answers) without the fences.
    """
    meta, text = _front_matter(text.replace("\r\n", "\n"))
    title = str(meta["title"]).strip() if meta.get("title") else None
    url = str(meta["url"]).strip() if meta.get("url") else None

    out: list[str] = []
    in_fence: str | None = None
    lines = text.split("\n")
    underline = -1  # index of a setext heading's underline, skipped
    for i, raw in enumerate(lines):
        if i == underline:
            continue
        fence = _FENCE.match(raw)
        if in_fence is not None:
            if fence and fence.group(1) == in_fence:
                in_fence = None
                out.append("")
            else:
                out.append(raw.strip())
            continue
        if fence:
            in_fence = fence.group(1)
            out.append("")
            continue
        heading = _ATX_HEADING.match(raw)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if heading is None and raw.strip() and _SETEXT_UNDERLINE.match(following) and (not out or not out[-1]):
            level = 1 if following.strip().startswith("=") else 2
            heading_text = _strip_inline(raw.strip())
            underline = i + 1
        elif heading is not None:
            level, heading_text = len(heading.group(1)), _strip_inline(heading.group(2))
        else:
            level, heading_text = 0, ""
        if level:
            if level == 1 and title is None:
                title = heading_text
            else:
                out.extend(["", heading_text, ""])
            continue
        if _TABLE_SEPARATOR.match(raw) and "|" in raw:
            continue
        if _RULE.match(raw) or _REF_DEFINITION.match(raw):
            out.append("")
            continue
        line = raw.strip()
        while line.startswith(">"):
            line = line[1:].strip()
        line = _LIST_MARKER.sub("", line)
        if "|" in line and line.count("|") >= 2:
            line = " ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        out.append(_strip_inline(line))
    return Parsed(title=title or None, url=url, body=tidy("\n".join(out)))


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
