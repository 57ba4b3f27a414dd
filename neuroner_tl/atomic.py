"""Writing files and folders so that a crash leaves the old version or none, never half of one.

Every temporary is a hidden sibling of what it becomes: ``.NAME.PID.tmp`` while being written,
``.NAME.PID.old.tmp`` for a folder being replaced. It is renamed into place when complete, removed
on an error, and one left by a process that no longer runs (killed, or a crashed machine) is
removed by the next write of ``NAME`` — or, for a replaced folder whose replacement never arrived,
put back.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from pathlib import Path
from typing import Dict, Iterator, Optional, Union

from .processes import process_alive

PathLike = Union[str, Path]
SUFFIX = ".tmp"


def temporary_for(path: Path, role: str = "") -> Path:
    """The hidden temporary beside ``path`` that this process writes (``role``: ``old`` and the like)."""
    return path.parent / f".{path.name}.{os.getpid()}{'.' + role if role else ''}{SUFFIX}"


def remove_stale_temporaries(path: Path, put_back: bool = False) -> None:
    """The temporaries of ``path`` (files or folders) left behind by processes that no longer run.
    ``put_back`` (a folder about to be replaced): when ``path`` itself is missing, a folder such a
    process had set aside to replace it (``.NAME.PID.old.tmp``: killed between its two renames) is
    put back first, so nothing is lost."""
    prefix = f".{path.name}."
    stale = [temporary for temporary in sorted(path.parent.glob(f"{glob.escape(prefix)}*{SUFFIX}"))
             if _dead_writer(temporary.name[len(prefix):].split(".")[0])]
    retired = [temporary for temporary in stale if temporary.name.endswith(f".old{SUFFIX}")]
    if put_back and retired and not path.exists():
        newest = max(retired, key=lambda temporary: temporary.stat().st_mtime)
        os.rename(newest, path)
        stale.remove(newest)
    for temporary in stale:
        _remove(temporary)


def _dead_writer(pid: str) -> bool:
    return pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid))


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_writer(path: PathLike, binary: bool = False):
    """A text (or, with ``binary``, bytes) stream onto the temporary of ``path``, flushed to disk and
    renamed into place when the block ends without an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temporary = temporary_for(path)
    try:
        with (open(temporary, "wb") if binary else open(temporary, "w", encoding="utf-8", newline="\n")) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path) as stream:
        stream.write(text)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` (an image, say) to ``path`` through :func:`atomic_writer`."""
    with atomic_writer(path, binary=True) as stream:
        stream.write(data)


@contextlib.contextmanager
def staging_folder(folder: PathLike, staging: Optional[PathLike] = None) -> Iterator[Path]:
    """An empty folder to fill (``staging``, by default the temporary of ``folder``) that replaces
    ``folder`` whole when the block ends without an error, and is removed when it does not."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder, put_back=True)
    staging = Path(staging) if staging is not None else temporary_for(folder)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
        swap_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def swap_into_place(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; an existing ``folder`` is set aside first and put back if the
    rename fails, so that one of the two is always there."""
    if not folder.exists():
        os.rename(staging, folder)
        return
    retired = temporary_for(folder, "old")
    os.rename(folder, retired)
    try:
        os.rename(staging, folder)
    except BaseException:
        os.rename(retired, folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def atomic_write_folder(folder: PathLike, files: Dict[str, str]) -> None:
    """Write ``files`` (name -> text) as the folder ``folder``, all at once (an existing one is replaced whole)."""
    with staging_folder(folder) as staging:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8", newline="\n")
