r"""Strings from files made safe for where they are shown: one line on a terminal or in a report
(:func:`visible`), and a spreadsheet cell (:func:`csv_cell`). Pure Python, no imports beyond the
standard library, so that the CLI, the study report and the metrics all use the same two rules.

Example:
    >>> visible("study\x1b[2J")
    'study\\x1b[2J'
    >>> csv_cell("=HYPERLINK(\"http://x\")"), csv_cell("-0.5"), csv_cell(0.25)
    ('\'=HYPERLINK("http://x")', '-0.5', 0.25)
"""

from __future__ import annotations

import re
from typing import Any

_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: A cell that starts with one of these is a formula to Excel, LibreOffice or Google Sheets.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_control(m: re.Match[str]) -> str:
    r"""The ``\xNN`` escape of one matched control character."""
    return f"\\x{ord(m.group()):02x}"


def visible(text: Any) -> str:
    r"""``text`` on one line with every control character (ESC, BEL, newline, ...) shown as ``\xNN``.

    Example:
        >>> print(visible("a\x1b[2Jb\nc"))
        a\x1b[2Jb\x0ac
    """
    return _CONTROL_ALL.sub(escape_control, str(text))


def csv_cell(value: Any) -> Any:
    """``value`` for a CSV cell that a spreadsheet opens as text: a string that starts like a formula
    (``=``, ``+``, ``-``, ``@``, tab, carriage return) gets a leading ``'``, as OWASP advises for CSV
    injection, unless it is a plain number (``-0.5``, ``+1e-3``); every other value is unchanged.

    Example:
        >>> csv_cell("@SUM(A1)"), csv_cell("+1e-3"), csv_cell("random")
        ("'@SUM(A1)", '+1e-3', 'random')
    """
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
