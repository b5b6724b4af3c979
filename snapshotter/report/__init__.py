"""Reports of a saved diff run: text (the human summary), JSON, CSV (long form) and Markdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from .as_csv import render_csv
from .as_json import render_json
from .as_markdown import render_markdown
from .as_text import render_text
from .saved import Report, ReportChange, ReportField, load_report

RENDERERS: dict[str, Callable[[Report, TextIO], None]] = {
    "text": render_text,
    "json": render_json,
    "csv": render_csv,
    "markdown": render_markdown,
}
FORMATS = tuple(RENDERERS)


def render(report: Report, fmt: str, out: TextIO, *, examples: int | None = None) -> None:
    """Write `report` to `out` in one of FORMATS; `examples` caps the entries of each section of
    the text and Markdown forms (None or 0: all; JSON and CSV always hold every change)."""
    if fmt == "text":
        render_text(report, out, examples=examples)
    elif fmt == "markdown":
        render_markdown(report, out, examples=examples)
    else:
        RENDERERS[fmt](report, out)


__all__ = [
    "FORMATS",
    "Report",
    "ReportChange",
    "ReportField",
    "load_report",
    "render",
]
