"""Quiet HiGHS instances: HiGHS prints its banner ("Running HiGHS ... Copyright") to the
process' stdout when the first instance is created, before any option can silence it. The
first instance emlpress creates is built with file descriptor 1 pointed at /dev/null (other
threads' writes to fd 1 in that instant are lost with it), so
emlpress' output (tables, a CLI piped into a file) never starts with it; HiGHS prints the
banner once per process, so later instances (the user's too) stay quiet."""

from __future__ import annotations

import threading

from emlpress._quiet import with_fd_on_devnull

_lock = threading.Lock()
_banner_done = False


def highs(silent: bool = True):
    """A new ``highspy.Highs`` instance with output off (``silent``), the banner swallowed."""
    global _banner_done
    import highspy

    with _lock:
        if _banner_done:
            h = highspy.Highs()
        else:
            h = with_fd_on_devnull(1, highspy.Highs)
            _banner_done = True
    if silent:
        h.setOptionValue("output_flag", False)
    return h
