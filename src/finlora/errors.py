"""The one exception type users see, and the wrapper that turns it into a clean exit."""

from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn


class FinloraError(Exception):
    """An error the user can fix: bad params, bad data, a missing model, no network.

    The message names the file, field or parameter and says what would be valid.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  hint: {self.hint}" if self.hint else text


def exit_on_error(main: Callable[[], object]) -> None:
    """Run `main`; on a FinloraError print one clear line (no traceback) and exit 2.

    `--debug` on the command line, or FINLORA_DEBUG=1 in the environment (for stages that
    `dvc repro` runs), gives the full traceback instead.
    """
    debug = "--debug" in sys.argv or bool(os.environ.get("FINLORA_DEBUG"))
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        main()
    except FinloraError as error:
        if debug:
            raise
        fail(str(error))


def fail(message: str) -> NoReturn:
    print(f"finlora: error: {message}", file=sys.stderr)
    sys.exit(2)
