"""A model folder's checksums: recorded when the folder is written, checked when it is read.

``checksums.json``, at the folder's root, holds the SHA-256 of every other file of the folder, the
SavedModel's included; ``model_io.save_tagger`` writes it last, into the folder being staged, so it
describes exactly what was moved into place. Two checks read it:

- loading (``model_io.load_tagger``) checks the *model files*: everything under ``saved_model/``
  (what TF Serving deploys) and ``evaluation.json``. One that changed, is missing, or is not listed
  is an error naming it. The run's records (``training.png``, ``logs/``) change no number the
  package gives, so loading does not need them; files a user adds beside them are ignored.
- ``verify`` (``neuroner-tl info --verify``) checks every listed file, and names the files
  added since.

A folder edited on purpose loads with ``--ignore-checksums`` (``load_tagger(ignore_checksums=True)``,
or inside ``checksums_ignored()``); every other check of the load still applies. A folder written
before checksums were recorded has no manifest: there is nothing to check, and it loads as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
from pathlib import Path, PurePosixPath
from typing import Dict, List, Optional, Tuple

from .atomic import atomic_write_text
from .fingerprints import file_fingerprint

MANIFEST = "checksums.json"
ALGORITHM = "sha256"
MODEL_FILES_FOLDER = "saved_model"
SCORES_FILE = "evaluation.json"
SHOWN = 4  # problems named in one error line

_ignored = contextvars.ContextVar("neuroner_tl_checksums_ignored", default=False)


@contextlib.contextmanager
def checksums_ignored():
    """Within the block, model folders load without their checksums checked (``--ignore-checksums``)."""
    token = _ignored.set(True)
    try:
        yield
    finally:
        _ignored.reset(token)


def ignoring_checksums() -> bool:
    return _ignored.get()


def is_model_file(name: str) -> bool:
    """The files whose content the package reads or serves (``name``: a path within the folder)."""
    return name == SCORES_FILE or name.startswith(f"{MODEL_FILES_FOLDER}/")


def folder_files(folder: Path) -> List[str]:
    """Every file under ``folder`` but its manifest, as sorted POSIX paths within it."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                  if path.is_file() and path.relative_to(folder).as_posix() != MANIFEST)


def write_manifest(folder: Path) -> None:
    """Record the checksum of every file of ``folder`` in its ``checksums.json`` (atomically)."""
    files = {name: file_fingerprint(folder / name) for name in folder_files(folder)}
    atomic_write_text(folder / MANIFEST, json.dumps({"algorithm": ALGORITHM, "files": files}, indent=1) + "\n")


def manifest_problem(manifest: dict) -> Optional[str]:
    """Why a parsed ``checksums.json`` (its schema already checked) cannot be used; None when it can."""
    if manifest["algorithm"] != ALGORITHM:
        return f"algorithm {manifest['algorithm']!r} is not {ALGORITHM}, the one this neuroner_tl checks"
    for name in manifest["files"]:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
            return f"files: {name!r} is not a path inside the model folder"
    return None


@dataclasses.dataclass(frozen=True)
class Verification:
    """What checking a folder against its ``checksums.json`` found (names: paths within the folder)."""

    folder: str
    manifest: bool  # the folder has one; without it nothing was checked
    checked: Tuple[str, ...] = ()  # listed files whose content is as written
    changed: Tuple[str, ...] = ()
    missing: Tuple[str, ...] = ()
    unlisted: Tuple[str, ...] = ()  # model files the manifest does not list
    added: Tuple[str, ...] = ()  # other files it does not list: added by a user, not checked

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.unlisted)

    def problems(self) -> List[str]:
        return ([f"{name} (changed)" for name in self.changed] + [f"{name} (missing)" for name in self.missing]
                + [f"{name} (not listed)" for name in self.unlisted])

    def error(self) -> str:
        """One line naming the files that are not as written (``ok`` is False)."""
        problems = self.problems()
        more = f" and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        files = "a file is" if len(problems) == 1 else f"{len(problems)} files are"
        return (f"{files} not as the model was written ({MANIFEST}): {', '.join(problems[:SHOWN])}{more}; copy "
                f"the folder again, or use it as it is with `neuroner-tl --ignore-checksums ...` "
                f"(ignore_checksums=True in Python)")

    def summary(self) -> str:
        if not self.manifest:
            return (f"checksums: none to verify: {self.folder} has no {MANIFEST} (written before neuroner_tl "
                    f"recorded checksums, or a bare SavedModel); `neuroner-tl upgrade` rewrites it with one")
        added = f"; not listed, so not checked: {', '.join(self.added)}" if self.added else ""
        return f"checksums: OK, {len(self.checked)} files as written ({MANIFEST}){added}"

    def to_dict(self) -> dict:
        return {"manifest": self.manifest, "ok": self.ok, "checked": list(self.checked), "changed": list(self.changed),
                "missing": list(self.missing), "unlisted": list(self.unlisted), "added": list(self.added)}


def verify(folder: Path, manifest: Optional[dict], everything: bool = True) -> Verification:
    """Check ``folder``'s files against its parsed, usable ``manifest`` (None: it has none): every listed
    file, or with ``everything`` False only the model files (``is_model_file``)."""
    if manifest is None:
        return Verification(str(folder), False)
    listed: Dict[str, str] = manifest["files"]
    present = set(folder_files(folder))
    found: Dict[str, List[str]] = {"checked": [], "changed": [], "missing": []}
    for name, digest in sorted(listed.items()):
        if not (everything or is_model_file(name)):
            continue
        if name not in present:
            found["missing"].append(name)
        else:
            found["checked" if file_fingerprint(folder / name) == digest else "changed"].append(name)
    unlisted = sorted(name for name in present - set(listed) if is_model_file(name))
    added = sorted(name for name in present - set(listed) if not is_model_file(name))
    return Verification(str(folder), True, *(tuple(found[key]) for key in ("checked", "changed", "missing")),
                        tuple(unlisted), tuple(added))
