"""Text that came from outside (a contacts file's attributes and column names, survey answers)
written into a CSV people open in a spreadsheet: a cell starting with `=`, `+`, `-`, `@`, a tab
or a carriage return would be run as a formula there (`=HYPERLINK(...)`, `=cmd|...`), so it gets
a leading `'`, as OWASP's CSV-injection advice says. Our own fields (E.164 numbers, states,
outcomes, times) are written as they are."""

from __future__ import annotations

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe(text: str) -> str:
    """The cell as a spreadsheet shows it, never as a formula."""
    return "'" + text if text.startswith(_TRIGGERS) else text
