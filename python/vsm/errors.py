"""Exceptions: one class per VSM_E* code, all subclasses of vsm.Error.

A failing libvsm call raises the class of its code, carrying the code
(``.code``, a positive VSM_E* number) and the library's message, which
names the object ("datastore 'ds1': container 'web' already exists").
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class Error(Exception):
    """A libvsm call failed. ``code`` is the positive VSM_E* code (0 when the
    binding itself refused, e.g. a handle used after close), ``message`` the
    library's text."""

    code: int = 0

    def __init__(self, message: Optional[str] = None, code: Optional[int] = None) -> None:
        if code is not None:
            self.code = code
        if message is None:
            message = strerror(self.code) if self.code else "libvsm error"
        self.message = message
        super().__init__(message)

    def __repr__(self) -> str:
        return "%s(code=%d, message=%r)" % (type(self).__name__, self.code, self.message)


class InvalidArgumentError(Error, ValueError):
    """VSM_EINVAL: an argument is malformed or out of range."""
    code = 1


class NoMemoryError(Error, MemoryError):
    """VSM_ENOMEM: out of memory."""
    code = 2


class NotFoundError(Error, LookupError):
    """VSM_ENOTFOUND: the named object does not exist."""
    code = 3


class ExistsError(Error):
    """VSM_EEXISTS: an object of that name already exists."""
    code = 4


class BusyError(Error):
    """VSM_EBUSY: the object is in use (attached, deployed, changed by
    another process meanwhile)."""
    code = 5


class NoSpaceError(Error):
    """VSM_ENOSPC: not enough space on the datastore."""
    code = 6


class StorageIOError(Error):
    """VSM_EIO: the storage failed an I/O."""
    code = 7


class CorruptError(Error):
    """VSM_ECORRUPT: a record or image is damaged and was refused."""
    code = 8


class NotSupportedError(Error):
    """VSM_ENOTSUP: the backend or build does not support this."""
    code = 9


class VersionError(Error):
    """VSM_EVERSION: a version (ABI, format) is unknown."""
    code = 10


class StateError(Error):
    """VSM_ESTATE: the object is not in a state that allows this."""
    code = 11


class MismatchError(Error):
    """VSM_EMISMATCH: compare-and-write found different data."""
    code = 12


class LeaseError(Error):
    """VSM_ELEASE: a lease is held by another host."""
    code = 13


class StaleError(Error):
    """VSM_ESTALE: this host's lease was lost; the write was fenced off."""
    code = 14


class PermissionDeniedError(Error):
    """VSM_EPERM: permission denied by the storage (or a read-only image)."""
    code = 15


class InternalError(Error):
    """VSM_EINTERNAL: a bug in libvsm."""
    code = 16


class CanceledError(Error):
    """VSM_ECANCELED: the caller cancelled the call; its work was undone."""
    code = 17


class TimedOutError(Error):
    """VSM_ETIMEDOUT: a deadline the caller set passed; its work was undone."""
    code = 18


class ClosedError(Error):
    """The binding refused: the handle, or the Context it belongs to, is
    closed. Not a libvsm code (``code`` is 0)."""
    code = 0


ERRORS: Dict[int, Type[Error]] = {
    cls.code: cls for cls in (
        InvalidArgumentError, NoMemoryError, NotFoundError, ExistsError,
        BusyError, NoSpaceError, StorageIOError, CorruptError,
        NotSupportedError, VersionError, StateError, MismatchError,
        LeaseError, StaleError, PermissionDeniedError, InternalError,
        CanceledError, TimedOutError)
}
"""Positive VSM_E* code -> exception class."""


def strerror(code: int) -> str:
    """The library's static description of a code (negated or not)."""
    from ._ffi import lib, pystr
    return pystr(lib.vsm_strerror(code)) or "unknown error %d" % code


def error_for(code: int, message: Optional[str] = None) -> Error:
    """The exception for a positive VSM_E* code; unknown codes give a plain
    vsm.Error carrying the code."""
    cls = ERRORS.get(code)
    if cls is None:
        return Error(message, code)
    return cls(message, code)
