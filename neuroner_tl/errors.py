"""The package's own errors: one line a user can act on, naming the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


class NeuronerError(Exception):
    """Base class for every error this package raises about user input or state."""


class DataFormatError(NeuronerError, ValueError):
    """A data file cannot be read; the message names the file and, when known, the line."""

    def __init__(self, message: str, path: Union[str, Path, None] = None, line: Optional[int] = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        location = ""
        if self.path is not None:
            location = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{location}{message}")


class ModelFolderError(NeuronerError):
    """A model folder is missing, incomplete, corrupt or from an incompatible version."""

    def __init__(self, folder: Union[str, Path], message: str):
        self.folder = str(folder)
        super().__init__(f"model folder {self.folder}: {message}")


class ThresholdError(NeuronerError, ValueError):
    """A confidence threshold that is not a probability, or names a type the model does not have."""


class UpdateError(NeuronerError):
    """An update request does not make sense for this model and these data."""


class TrainingDiverged(NeuronerError):
    """The training loss became NaN or infinite; nothing of the run is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or a stop asked for by a test) during a run; the message says what is kept and how
    to carry on. A ``KeyboardInterrupt``, so code that handles Ctrl-C still sees one."""


class CalibrationError(NeuronerError):
    """Labelled data cannot fit a confidence temperature: too little evidence, or a best temperature
    on a bound of the search (``calibration``); the temperature stays as it was."""
