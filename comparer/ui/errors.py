"""Every failure reaches the visitor as a sentence. Why: with ``show_error=False`` (so tracebacks and
paths never leak) Gradio answered an unexpected exception with ``{"error": null}``; here it becomes a
``gr.Error`` that names the kind of failure and what to do, and the full traceback goes to the log."""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

log = logging.getLogger("comparer")


def _said(err: Exception, what: str) -> gr.Error:
    log.exception("%s failed", what)
    return gr.Error(f"{what} failed on the server ({type(err).__name__}); nothing was lost and the app keeps "
                    "serving. Try again; if it repeats, tell the operator the time of the failure.")


def _ordinary(err: gr.Error, what: str) -> gr.Error:
    """A visitor's mistake (voting before comparing, a pair that cannot load here): one log line, no
    traceback in the terminal (Gradio prints one for every gr.Error unless told not to)."""
    log.info("%s refused: %s", what, getattr(err, "message", err))
    err.print_exception = False
    return err


def clear_errors(what: str):
    """Decorate a handler (plain or generator): gr.Error passes through as one log line, anything else
    is said plainly with its traceback in the log."""
    def wrap(fn):
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except gr.Error as err:
                    raise _ordinary(err, what)
                except Exception as err:  # noqa: BLE001
                    raise _said(err, what) from err
            return gen

        @functools.wraps(fn)
        def plain(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error as err:
                raise _ordinary(err, what)
            except Exception as err:  # noqa: BLE001
                raise _said(err, what) from err
        return plain
    return wrap
