"""What building prompt records from raw rows shares across kinds of answer: rows read in order
with duplicate ids refused, and a bad row either stopping the stage (naming its file and line) or,
with `data.on_bad_record: skip`, skipped and counted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from finlora.errors import FinloraError

if TYPE_CHECKING:
    from finlora.config import Params


class BadRecords:
    """Where a bad row stops the stage (naming file:line) or is skipped and counted."""

    def __init__(self, path: Path, policy: str):
        self.path, self.policy, self.skipped = path, policy, 0

    @contextlib.contextmanager
    def row(self, line: int | None) -> Iterator[None]:
        """Errors inside name `path:line` (or only the path where no single line is to blame)."""
        try:
            yield
        except FinloraError as error:
            if self.policy == "error":
                where = f"{self.path}:{line}" if line else str(self.path)
                raise FinloraError(f"{where}: {error.args[0]}",
                                   hint=error.hint or "set data.on_bad_record: skip to skip and count such rows") from None
            self.skipped += 1


@dataclass
class RowContext:
    """What building records from raw rows may need besides the rows: where bad rows go, the
    params, FiNER's tag names and `fits` (does a prompt + answer fit train.max_seq_len), and the
    folder of the filings XBRL questions name."""

    bad: BadRecords
    params: Params
    tag_names: list[str] | None = None
    filings: Path | None = None
    fits: Callable[[str, str], bool] | None = None


def for_each_row(rows: list[dict], bad: BadRecords, use: Callable[[dict], None]) -> None:
    """`use` every row in order; a row with an id seen before is bad, like one `use` rejects."""
    lines_by_id: dict[str, int] = {}
    for line, row in enumerate(rows, start=1):
        with bad.row(line):
            if "id" in row:
                first = lines_by_id.setdefault(str(row["id"]), line)
                if first != line:
                    raise FinloraError(f"id {row['id']!r} was already used on line {first}",
                                       hint="ids must be unique within a split")
            use(row)
