"""Ctrl-C during training: remembered as well as raised, so that one swallowed by a finalizer is not lost."""

from __future__ import annotations

import signal
import threading


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
