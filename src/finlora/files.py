"""Reading inputs with precise errors, and writing outputs atomically.

Every output is written to a temporary sibling and renamed into place, so an interrupted stage
never leaves a half-written file or folder where DVC (or the next stage) would trust it.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from finlora.errors import FinloraError

UMASK = os.umask(0o022)
os.umask(UMASK)
WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES}


LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def check_is_jsonl(path: Path) -> None:
    """Refuse, in one line, a file that is not JSON lines whatever its name says: a Git LFS pointer
    left by a clone without `git lfs`, a saved web page, a compressed file."""
    if not path.is_file():
        raise FinloraError(f"{path}: file not found")
    with path.open("rb") as handle:
        head = handle.read(512)
    if head.startswith(LFS_POINTER):
        size = next((line.split()[1].decode() for line in head.splitlines() if line.startswith(b"size ")), "?")
        raise FinloraError(f"{path}: a Git LFS pointer, not the data ({size} bytes kept in Git LFS)",
                           hint=f"run `git lfs install && git lfs pull` in the clone that holds {path.name}")
    what = next((name for magic, name in NOT_JSONL if head.lstrip().lower().startswith(magic)), None)
    if what:
        raise FinloraError(f"{path}: {what}, not JSON lines", hint="expected one JSON object per line")


NOT_JSONL = ((b"<!doctype html", "a web page"), (b"<html", "a web page"), (b"\x1f\x8b", "gzip-compressed"),
             (b"pk\x03\x04", "a zip archive"), (b"bzh", "bzip2-compressed"))


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    check_is_jsonl(path)
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise FinloraError(f"{path}:{number}: malformed JSON line ({error.msg})") from None
                if not isinstance(row, dict):
                    raise FinloraError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
    except (OSError, UnicodeDecodeError) as error:
        raise FinloraError(f"{path}: cannot read ({error})") from None
    return rows


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FinloraError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FinloraError(f"{path}: cannot read JSON ({error})") from None


def write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes it private; outputs get the usual mode
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _remove_leftovers(path: Path) -> None:
    """Temporary siblings of `path` that a killed run (SIGKILL skips every cleanup) left behind."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise _write_failure(path, error) from None


def _write_failure(path: Path, error: OSError) -> FinloraError:
    """A full disk or a read-only folder while writing `path`, as a clear error."""
    return FinloraError(f"{path}: cannot write ({error.strerror or error})",
                        hint="free disk space or fix the folder's permissions, then rerun; "
                        "outputs already written are kept")


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `path` whole, on failure it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp makes it private; outputs get the usual mode
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        raise _write_failure(path, error) from None
    except FinloraError as error:  # name the output the user knows, not its temporary folder
        raise FinloraError(error.args[0].replace(str(tmp), str(path)), hint=error.hint) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
