"""Text that leaves icp-sync for a CRM field, a spreadsheet or a terminal table (pure).

Two rules, applied here and nowhere else:

- **Formula neutralising.** A value from an export that starts with ``=``, ``+``, ``-`` or
  ``@`` (or a tab / carriage return) is read as a formula by spreadsheets that open a CRM
  report or a CSV (``=HYPERLINK(...)``). Such values get a leading apostrophe, the
  convention spreadsheets themselves use for "this is text". Numbers (``-12``, ``-12%``,
  ``+3.5``) are not formulas and are left alone.
- **Shortening** at a word boundary with an ellipsis, never mid-word.
"""

from __future__ import annotations

import re

__all__ = ["ELLIPSIS", "neutralize", "neutralize_list", "safe_text", "shorten"]

ELLIPSIS = "…"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d[\d,.]*\s?%?$")


def neutralize(value: str) -> str:
    """``value`` made inert for spreadsheets: a leading apostrophe when it could be a formula.

    >>> neutralize("=HYPERLINK(\\"http://x\\")")
    '\\'=HYPERLINK("http://x")'
    >>> neutralize("-12%")
    '-12%'
    """
    if value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def neutralize_list(value: str, sep: str = ", ") -> str:
    """Each ``sep``-separated item of ``value`` neutralised (a segment label, a list of names)."""
    return sep.join(neutralize(item) for item in value.split(sep))


def shorten(value: str, width: int) -> str:
    """``value`` cut to at most ``width`` characters at a word boundary, ending in an ellipsis.

    A single word longer than ``width`` is cut inside it (there is no boundary to use).
    """
    if len(value) <= width:
        return value
    if width <= len(ELLIPSIS):
        return ELLIPSIS[:width]
    head = value[: width - len(ELLIPSIS) + 1]
    cut = head.rfind(" ")
    kept = head[:cut] if cut > 0 else head[:-1]
    return kept.rstrip(" ,;:.-") + ELLIPSIS


def safe_text(value: str, width: int | None = None) -> str:
    """:func:`neutralize` then, when ``width`` is given, :func:`shorten`."""
    text = neutralize(value)
    return text if width is None else shorten(text, width)
