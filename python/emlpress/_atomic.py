"""Output files written atomically: every writer of emlpress (``compress -o``, ``quantize -o``,
run folders' CSVs, JSON logs, models and plots, battery results) goes through
:func:`write_atomic`, so a reader, a crash or a full disk sees the old file or the new one,
never a part of either.

The content goes to a temporary file in the target's own directory (a rename is atomic only
within one file system), which is flushed to the disk (``fsync``) and renamed over the target;
the directory is then synced too, so the rename itself survives a power cut. A failure
removes the temporary file and raises :class:`WriteError` naming the target; an existing
target is left as it was.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["write_atomic", "write_json_atomic", "write_bytes_atomic", "write_text_atomic",
           "write_csv_atomic", "save_figure_atomic", "check_writable", "WriteError", "json_default"]

_UMASK = os.umask(0o022)
os.umask(_UMASK)


class WriteError(OSError):
    """An output file that could not be written: the message names it; an existing file of
    that name is unchanged. ``errno`` is the cause's (``ENOSPC`` for a full disk)."""

    def __str__(self) -> str:  # the message alone, without OSError's "[Errno 28]"
        return self.strerror or super().__str__()


def _cause(e: OSError) -> str:
    """The system's words for the error (h5py and others wrap them in pages of their own)."""
    if e.errno:
        return os.strerror(e.errno)
    text = str(e)
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
        if os.strerror(code) in text:
            return os.strerror(code)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def _fsync_path(path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems cannot sync a directory: the rename still holds
        if not directory or e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_atomic(path, write: Callable, keep_suffix: bool = False) -> None:
    """``write(tmp)`` writes the file's content to ``tmp``, a temporary path in ``path``'s
    directory, which is synced and renamed to ``path``. ``keep_suffix``: ``tmp`` ends in
    ``path``'s suffix (for writers that choose the format by it, like Keras' ``save``);
    otherwise in ``.tmp``. Raises :class:`WriteError` naming ``path`` when anything fails."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        suffix = f".tmp{path.suffix}" if keep_suffix else ".tmp"
        prefix = f".{path.stem if keep_suffix else path.name}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from the group
        os.close(fd)
    except OSError as e:
        raise WriteError(e.errno, f"{path}: cannot be written ({_cause(e)})") from None
    try:
        write(tmp)
        _fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            kept = "; the existing file is unchanged" if path.exists() else ""
            raise WriteError(e.errno, f"{path}: cannot be written ({_cause(e)}){kept}") from None
        raise
    _fsync_path(path.parent, directory=True)


def write_bytes_atomic(path, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(content))


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def write_csv_atomic(path, frame, index: bool = False, **options) -> None:
    """``frame.to_csv(path, index=index, **options)`` atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=index, **options))


def save_figure_atomic(fig, path, **options) -> None:
    """``fig.savefig(path, **options)`` atomically; the format is ``path``'s suffix."""
    fmt = options.pop("format", Path(path).suffix.lstrip(".") or None)
    write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, **options))


def json_default(o):
    """A ``default`` for :func:`write_json_atomic` of logs: arrays (and numpy scalars) as
    lists (numbers), anything else as its text."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return str(o)


def write_json_atomic(path, payload, default: Callable | None = None, indent: int = 1) -> None:
    """Write ``payload`` as JSON to ``path`` atomically (:func:`write_atomic`)."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=indent, default=default)

    write_atomic(path, write)


def check_writable(path, name: str | None = None) -> Path:
    """Raise :class:`WriteError` now, before any computation, if ``path`` cannot be written:
    its directory missing, or not writable (permissions, a read-only file system), or ``path``
    a directory. ``name`` (an option such as ``-o``) starts the message. A file is created
    and removed in the directory to find out: the only test that sees every cause."""
    path = Path(path)
    said = f"{name} {path}" if name else str(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise WriteError(errno.ENOENT, f"{said}: directory {parent.resolve()} does not exist")
    if path.is_dir():
        raise WriteError(errno.EISDIR, f"{said}: is a directory; give a file name")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise WriteError(e.errno, f"{said}: cannot write in {parent.resolve()} "
                                  f"({_cause(e)})") from None
    return path
