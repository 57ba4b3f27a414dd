"""Signals during training: a Ctrl-C remembered as well as raised, so that one swallowed by a finalizer
is not lost; and, for tests of interrupted runs, a signal sent at a chosen step."""

from __future__ import annotations

import os
import signal
import threading
from typing import Optional

# For tests of interrupted runs, not an option: NEURONER_TL_INTERRUPT=SIGNAL@STEP (``INT@7``, ``KILL@12``)
# makes the trainer send SIGNAL to its own process right after the STEP-th training step of this
# process (a resumed run counts from 1 again). A test then interrupts at a step it chooses instead
# of at a moment it measures. See ``callbacks.BatchGuard``.
INTERRUPT_VARIABLE = "NEURONER_TL_INTERRUPT"


class CtrlC:
    """While training, remember a Ctrl-C as well as raising it: Python drops an exception raised in a
    finalizer (``__del__``, which TensorFlow objects run in the main thread at any moment), so the
    callbacks raise it again at the next batch (``BatchGuard``) and so does leaving the block."""

    def __init__(self):
        self.pressed = False
        self._previous = None

    def _handler(self, signum, frame):
        self.pressed = True
        raise KeyboardInterrupt

    def __enter__(self) -> "CtrlC":
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def __exit__(self, kind, error, traceback) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if error is None:
            self.check()


def interruption_asked() -> Optional[tuple]:
    """``(signal, step)`` from ``NEURONER_TL_INTERRUPT`` (``INT@7``: SIGINT after step 7), or None."""
    value = os.environ.get(INTERRUPT_VARIABLE, "").strip()
    if not value:
        return None
    name, _, step = value.partition("@")
    try:
        return signal.Signals["SIG" + name.upper()], int(step)
    except (KeyError, ValueError):
        raise ValueError(f"{INTERRUPT_VARIABLE}={value!r}: expected SIGNAL@STEP, e.g. INT@7 or KILL@12") from None
