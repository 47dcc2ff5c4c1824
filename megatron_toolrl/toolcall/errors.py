"""The one exception the parsers raise internally; `parse_calls` turns it into `ParseResult.error`."""

from __future__ import annotations


class ParseFailure(Exception):
    """Model text that is not a well-formed answer (or is over a bound). Never escapes `parse_calls`."""
