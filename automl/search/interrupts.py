"""Interrupting a search: SIGINT/SIGTERM become :class:`RunInterrupted`, never a failed trial."""

from __future__ import annotations

import signal

import keras


class RunInterrupted(BaseException):
    """SIGINT/SIGTERM during a search.

    A BaseException, like KeyboardInterrupt, so that Keras Tuner's per-trial
    ``except Exception`` does not record it as a failed trial and carry on.
    """


# The signals received since the handlers were installed. A signal whose exception is raised
# while Python runs a finaliser (a dataset iterator's ``__del__`` between trials) is printed as
# "Exception ignored" and lost: the search would go on and end with status 0. What is kept
# here is raised again at the next batch end (:class:`InterruptCheck`) or when the search ends.
_received: list[str] = []


def install_interrupt_handlers() -> dict:
    """Turn SIGINT/SIGTERM into :class:`RunInterrupted`; returns the previous handlers."""
    _received.clear()
    return {s: signal.signal(s, raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}


def raise_interrupted(signum, frame):
    """Signal handler: turn SIGINT/SIGTERM into :class:`RunInterrupted`, and remember it."""
    _received.append(signal.Signals(signum).name)
    raise RunInterrupted(_received[-1])


def check_interrupted() -> None:
    """Raise :class:`RunInterrupted` if a signal arrived, even one whose exception was lost."""
    if _received:
        raise RunInterrupted(_received[-1])


class InterruptCheck(keras.callbacks.Callback):
    """Raise an interruption that a finaliser swallowed at the next batch end."""

    def on_train_batch_end(self, batch, logs=None):
        check_interrupted()
