"""Text files and standard input read a line at a time, the one way every reader splits lines.

A line ends at ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files), in files and in strings alike; a
leading byte-order mark is dropped; each line is decoded on its own, so a byte that is not UTF-8 is
reported on its own line, however large the file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import BinaryIO, Iterator, List, Optional, Union

from .errors import DataFormatError

STDIN = "-"
BOM = "\ufeff"
_LONE_CR = re.compile(rb"\r(?!\n)")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")


def split_lines(text: str) -> List[str]:
    """``text``'s lines with their endings, split as files are (``\\n``, ``\\r\\n``, a lone ``\\r``)."""
    return _LINE.findall(text)


def line_of(raw: bytes, offset: int) -> int:
    """The 1-based line of byte ``offset`` in ``raw``, lines split as files are."""
    return len(_BREAK_BYTES.findall(raw, 0, offset)) + 1


def byte_lines(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of a binary stream with their endings; a lone ``\\r`` ends a line too."""
    for line in stream:
        if b"\r" not in line:
            yield line
            continue
        start = 0
        for match in _LONE_CR.finditer(line):
            yield line[start: match.end()]
            start = match.end()
        if start < len(line):
            yield line[start:]


class LineSource:
    """The lines of a file or of standard input (``"-"``), without a byte-order mark; the first
    ``peek`` lines can be looked at before reading starts (to guess the format). A line that is not
    UTF-8 is a ``DataFormatError`` naming the file and that line."""

    def __init__(self, source: Union[str, Path], stream: Optional[BinaryIO] = None):
        self.from_stdin = str(source) == STDIN
        self.name = "<stdin>" if self.from_stdin else str(source)
        if stream is None and self.from_stdin:
            stream = sys.stdin.buffer
        elif stream is None:
            path = Path(source)
            if not path.is_file():
                raise DataFormatError("is a folder, not a file" if path.is_dir() else "no such file", path)
            try:
                stream = open(path, "rb")
            except OSError as error:
                raise DataFormatError(f"cannot read: {error.strerror}", path) from None
        self.stream = stream
        self._lines = byte_lines(stream)
        self.line = 0  # lines handed out so far
        self._read_count = 0  # lines read from the stream (handed out or peeked)
        self._head: List[str] = []

    @property
    def document(self) -> str:
        """The name of the text as a document (BRAT output, JSON records): the file's stem, or ``stdin``."""
        return "stdin" if self.from_stdin else Path(self.name).stem

    def peek(self, count: int) -> List[str]:
        while len(self._head) < count:
            line = self._read()
            if line is None:
                break
            self._head.append(line)
        return list(self._head)

    def _read(self) -> Optional[str]:
        raw = next(self._lines, None)
        if raw is None:
            return None
        self._read_count += 1
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataFormatError(f"not UTF-8 text (byte 0x{raw[error.start]:02x})",
                                  self.name, self._read_count) from None
        if self._read_count == 1 and line.startswith(BOM):
            line = line[1:]
        return line

    def __iter__(self) -> Iterator[str]:
        while True:
            if self._head:
                line = self._head.pop(0)
            else:
                line = self._read()
                if line is None:
                    return
            self.line += 1
            yield line

    def close(self) -> None:
        if not self.from_stdin:
            self.stream.close()

    def __enter__(self) -> "LineSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_utf8_text(path: Union[str, Path]) -> str:
    """A file's text without a leading byte-order mark; ``DataFormatError`` names the file (and the
    line of the first byte that is not UTF-8)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("no such file", path) from None
    except IsADirectoryError:
        raise DataFormatError("is a folder, not a file", path) from None
    except OSError as error:
        raise DataFormatError(f"cannot read: {error.strerror}", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataFormatError(f"not UTF-8 text (byte 0x{raw[error.start]:02x})", path, line_of(raw, error.start)) from None
    return text[1:] if text.startswith("\ufeff") else text  # a byte-order mark is not part of the text
