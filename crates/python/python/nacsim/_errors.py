"""nacsim's exceptions.

Every error of nacsim's Rust code reaches Python as one of these classes. ``str(e)`` is the
message the ``nacsim`` command line prints after ``error:`` (with its ``caused by:`` lines), and
the attributes say what the message says, for code that handles the error:

- ``file``: the file at fault (a design, network, sweep, training or data file), or ``None``;
- ``field``: the dotted path of the field at fault (``engines[0].engine.Systolic.rows``), the
  argument (``labels[3]``) or ``None``;
- ``value``: the offending value as written, or ``None``;
- ``rule``: the rule it breaks (``must be in 1..=16``), or ``None``;
- ``line``, ``column``: 1-based position of a parse error in ``file``, else ``None``;
- ``errors``: every broken rule of a file that breaks several, as ``(field, value, rule)``
  tuples (the attributes above describe the first).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

__all__ = ["NacsimError", "ConfigError", "DataError"]


class NacsimError(Exception):
    """Any error of nacsim (a memory estimate over ``NACSIM_MEMORY_LIMIT``, an I/O failure, ...).

    The base class of :class:`ConfigError` and :class:`DataError`.
    """

    file: Optional[str]
    field: Optional[str]
    value: Optional[str]
    rule: Optional[str]
    line: Optional[int]
    column: Optional[int]
    errors: List[Tuple[str, str, str]]

    def __init__(
        self,
        message: str,
        *,
        file: Optional[str] = None,
        field: Optional[str] = None,
        value: Optional[str] = None,
        rule: Optional[str] = None,
        line: Optional[int] = None,
        column: Optional[int] = None,
        errors: Optional[List[Tuple[str, str, str]]] = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.field = field
        self.value = value
        self.rule = rule
        self.line = line
        self.column = column
        self.errors = list(errors or [])


class ConfigError(NacsimError, ValueError):
    """A design, network, sweep or training file is wrong (it does not parse, a field breaks a
    rule, the design does not fit the network), or a value given to :meth:`Design.set` is."""


class DataError(NacsimError):
    """A dataset is missing, damaged, or does not fit the network: IDX files, or arrays given
    as ``data=(images, labels)``."""
