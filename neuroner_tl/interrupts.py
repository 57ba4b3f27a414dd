"""Stopping signals: SIGINT (Ctrl-C) and SIGTERM (``kill``, a process manager) in the command line's
process (``CommandLineStops``); a Ctrl-C during training remembered as well as raised (``CtrlC``);
and, for tests of interrupted runs, a signal sent at a chosen step."""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Optional

# For tests of interrupted runs, not an option: NEURONER_TL_INTERRUPT=SIGNAL@STEP (``INT@7``, ``KILL@12``)
# makes the trainer send SIGNAL to its own process right after the STEP-th training step of this
# process (a resumed run counts from 1 again). A test then interrupts at a step it chooses instead
# of at a moment it measures. See ``callbacks.BatchGuard``.
INTERRUPT_VARIABLE = "NEURONER_TL_INTERRUPT"

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130
NOTHING_WRITTEN = "interrupted; nothing was written"
RETRY_SECONDS = 0.01  # a stop that came inside a finalizer is handled again this much later


class CommandLineStops:
    """SIGINT and SIGTERM in the command line's process, the same way from ``main``'s first line to
    the process's exit:

    - before a command starts its work (reading its options, importing TensorFlow) nothing is
      written yet: ``NOTHING_WRITTEN`` on stderr and exit 130 at once;
    - while it works (``at_work``): ``KeyboardInterrupt``, so that the command's own clean-up runs
      (temporaries removed, training's last epoch kept) and its one line says what was kept. From
      the first stop on, Python's logging and warnings are off: TensorFlow logs an error for every
      object a computation cut short left unused, once it is collected. A stop is never raised inside
      a finalizer (``__del__``), where Python would print it and carry on: it comes again once the
      finalizer is done; one that another callback swallowed comes again too (``sys.unraisablehook``);
    - once the command has ended (its result or its one line printed): ignored up to the exit
      (``leave``), Python's teardown included, where a signal would otherwise kill the process
      (exit 143 or a second message).
    """

    def __init__(self):
        self.working = False
        self.stopped = False
        self._stderr = os.dup(2)  # the real stderr, also while TensorFlow's import has fd 2 on /dev/null
        self._other_unraisable = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        for number in STOP_SIGNALS:
            signal.signal(number, self._stop)

    def _stop(self, signum, frame) -> None:
        if not self.working:
            self._exit_at_once()
        self.stopped = True
        logging.disable(logging.CRITICAL)
        warnings.simplefilter("ignore")
        if self._swallowed_here(frame):
            self._again(signum)
            return
        raise KeyboardInterrupt

    @staticmethod
    def _again(signum) -> None:
        """``signum`` handled again in a moment. Sent from another thread: sent from here, it would be
        handled at once, inside this handler."""
        timer = threading.Timer(RETRY_SECONDS, _thread.interrupt_main, (signum,))
        timer.daemon = True
        timer.start()

    def _swallowed_here(self, frame) -> bool:
        """Whether an exception raised in ``frame`` would be printed and dropped: a finalizer's or
        the unraisable hook's frame, or one they called."""
        while frame is not None:
            if frame.f_code.co_name == "__del__" or frame.f_code is CommandLineStops._unraisable.__code__:
                return True
            frame = frame.f_back
        return False

    def _unraisable(self, unraisable) -> None:
        if not self.stopped:
            self._other_unraisable(unraisable)
        elif issubclass(unraisable.exc_type, KeyboardInterrupt):
            self._again(signal.SIGINT)  # a stop that a callback swallowed: raised again
        # after a stop, nothing is printed but the command's own line

    def _exit_at_once(self) -> None:
        _flush_standard_streams()
        os.write(self._stderr, (NOTHING_WRITTEN + "\n").encode())
        os._exit(EXIT_INTERRUPTED)

    @contextlib.contextmanager
    def at_work(self):
        """The command's work: a stop raises ``KeyboardInterrupt``; after it, stops are ignored."""
        self.working = True
        try:
            yield
        finally:
            for number in STOP_SIGNALS:
                signal.signal(number, signal.SIG_IGN)

    def leave(self, code) -> None:
        """Exit with ``code``; after an interruption without Python's teardown, which would only
        collect what the computation cut short left behind (the command has cleaned up)."""
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        if code == EXIT_INTERRUPTED:
            _flush_standard_streams()
            os._exit(EXIT_INTERRUPTED)
        sys.exit(code)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed, or a write the signal cut short
            pass


_command_line: Optional[CommandLineStops] = None


def handle_stops() -> CommandLineStops:
    """The command line's handling of SIGINT and SIGTERM (``CommandLineStops``), from now on."""
    global _command_line
    _command_line = CommandLineStops()
    return _command_line


def at_work():
    """The command's work (``CommandLineStops.at_work``); nothing changes where the command line's
    handling is not in force (the package used as a library, the CLI called in-process)."""
    return _command_line.at_work() if _command_line is not None else contextlib.nullcontext()


def stop_received() -> bool:
    """Whether the command line's process has been asked to stop."""
    return _command_line is not None and _command_line.stopped


class CtrlC:
    """While training, remember a Ctrl-C as well as raising it: Python drops an exception raised in a
    finalizer (``__del__``, which TensorFlow objects run in the main thread at any moment), so the
    callbacks raise it again at the next batch (``BatchGuard``) and so does leaving the block. Under
    the command line its handler is ``CommandLineStops``'s and ``check`` asks it."""

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
        if self.pressed or stop_received():
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
