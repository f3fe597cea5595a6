"""How the CLI prints: rich tables for people, JSON or CSV for programs."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "csv")
UNBOUNDED = 100_000  # columns: a table measured at this width is measured at its natural width


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, title: str = "") -> None:
    if fmt == "json":
        print_json([{c: row.get(c) for c in columns} for row in rows])
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print_table(rows, columns, title)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """A table that never cuts a header or a value to an ellipsis.

    In a terminal it fits the width, wrapping long cells (fold: a long id breaks too). Written to a file
    or a pipe there is no width to fit: the table is as wide as its widest row, one line per row, so
    grep, diff and a later reader see every header and value whole.
    """
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console = Console()
    if not console.is_terminal:
        natural = Console(width=UNBOUNDED).measure(table).maximum
        console = Console(width=max(80, natural))
    console.print(table)


def fail(message: str, code: int = 1) -> int:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return code
