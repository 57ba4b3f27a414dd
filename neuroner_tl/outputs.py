"""Where a command may write: the one rule that decides, for every command, whether an output may
be written, before any work starts.

Every path a command reads is an input: data files, BRAT folders, vector files, model folders and
everything under them. An output may not be an input, lie inside one, or hold one, with or without
``force``. Beyond that, by the kind of output:

- ``file`` (predictions, annotations, vectors): a new file, or with ``force`` an existing file;
- ``brat`` (a BRAT folder): a new or empty folder, or with ``force`` a folder that holds only BRAT
  ``.txt``/``.ann`` files;
- ``model`` (a model folder): a new or empty folder, or with ``force`` another model folder.

A folder output is never the current folder or a folder that holds it, and a folder of other
files is never replaced, whatever the flags. The place must be writable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Union

from .errors import NeuronerError

PathLike = Union[str, Path]
KINDS = ("file", "brat", "model")
STDIN = "-"
MODEL_MARKERS = ("saved_model/saved_model.pb", "saved_model/assets/model.json")  # what a model folder holds
BARE_MODEL_MARKERS = ("saved_model.pb", "assets/model.json")  # an exported SavedModel on its own
LEGACY_MODEL_MARKERS = ("model.json", "config.json")  # format 1 (neuroner_tl 0.1)
BRAT_SUFFIXES = (".txt", ".ann")


def is_model_folder(folder: Path) -> bool:
    return any(all((folder / name).is_file() for name in markers)
               for markers in (MODEL_MARKERS, BARE_MODEL_MARKERS, LEGACY_MODEL_MARKERS))


def is_brat_output(folder: Path) -> bool:
    """A folder of BRAT files only (what ``predict --format brat`` writes): nothing else to lose."""
    return all(path.is_file() and not path.is_symlink() and path.suffix in BRAT_SUFFIXES
               for path in folder.iterdir())


def _resolved(path: PathLike) -> Path:
    return Path(os.path.abspath(path)).resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def input_paths(inputs: Iterable[object]) -> list:
    """The paths among a command's inputs (None, standard input and in-memory objects are left out)."""
    return [Path(source) for source in inputs
            if isinstance(source, (str, Path)) and str(source) != STDIN]


def check_writable_place(path: PathLike) -> None:
    """``path`` can be created: its first existing ancestor is a folder this process may write in."""
    path = Path(os.path.abspath(path))
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise NeuronerError(f"{ancestor} is a file, so {path} cannot be created there")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise NeuronerError(f"cannot write in {ancestor} (permission denied); choose another output")


def check_not_an_input(output: PathLike, inputs: Iterable[object]) -> None:
    """An output is not an input, does not lie inside one and does not hold one (symlinks followed)."""
    resolved = _resolved(output)
    for source in input_paths(inputs):
        source_path = _resolved(source)
        if source_path == resolved:
            raise NeuronerError(f"{output} is an input of this command; write the output somewhere else")
        if _inside(resolved, source_path):
            raise NeuronerError(f"{output} lies inside {source}, an input of this command; write the output "
                                f"somewhere else")
        if _inside(source_path, resolved):
            raise NeuronerError(f"{output} holds {source}, an input of this command; write the output "
                                f"somewhere else")


def check_model_destination(output: PathLike, force: bool, inputs: Iterable[Optional[PathLike]] = ()) -> Path:
    """Refuse, whatever ``force`` says, an output that would destroy something that is not a model."""
    return check_output(output, "model", force, inputs)


def check_output(output: PathLike, kind: str, force: bool = False, inputs: Iterable[object] = ()) -> Path:
    """Refuse an output that would destroy an input or something that is not the command's own kind of
    output (see the module's docstring); returns ``output`` as a ``Path``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    output = Path(output)
    if kind != "file" and _inside(_resolved(Path.cwd()), _resolved(output)):
        raise NeuronerError(f"{output} is the current folder or holds it; write the output to a new folder")
    check_not_an_input(output, inputs)
    if kind == "file":
        _check_file(output, force)
    else:
        _check_folder(output, kind, force)
    check_writable_place(output)
    return output


def _check_file(output: Path, force: bool) -> None:
    if output.is_dir():
        raise NeuronerError(f"{output} is a folder; name a file to write")
    if output.exists() and not force:
        raise NeuronerError(f"{output} already exists; choose another output or pass --force to replace it")


def _check_folder(output: Path, kind: str, force: bool) -> None:
    what = "a model" if kind == "model" else "BRAT output"
    if output.exists() and not output.is_dir():
        raise NeuronerError(f"{output} exists and is not a folder; {what} is written to a folder")
    if not output.exists() or not any(output.iterdir()):
        return
    replaceable = is_model_folder(output) if kind == "model" else is_brat_output(output) and not is_model_folder(output)
    if not replaceable:
        shown = ", ".join(sorted(p.name for p in output.iterdir())[:3])
        other = "a model folder" if kind == "model" else "a folder of BRAT .txt/.ann files only"
        replaced = "another model" if kind == "model" else "earlier BRAT output"
        raise NeuronerError(f"{output} exists and is not {other} (it holds {shown}...); {what} is only written to a "
                            f"new folder, an empty one or over {replaced}")
    if not force:
        raise NeuronerError(f"{output} already exists; choose another output or pass --force to replace it")
