"""Ownership of C handles, and the trampolines that carry callbacks.

An _Owner holds one thing the library says to free (a handle, or a list
with its handles) and frees it exactly once: at close(), when its Context
closes, or after the garbage collector dropped it (deferred to the next
call, see _ffi.defer_free). Python objects that read a C handle keep its
owner alive, and refuse with vsm.ClosedError once it is released.
"""

from __future__ import annotations

import io
import threading
from typing import Any, Callable, List, Optional

from ._ffi import RANK_HANDLE, defer_free, ffi
from .errors import ClosedError, Error

ProgressFn = Callable[[int, int], Any]
"""A progress callback: progress(done, total). A true return value cancels
the call (which then raises vsm.CanceledError); so does an exception, which
is raised again once the call has returned."""


class _Owner:
    """Frees a C resource once: fn(*args)."""

    __slots__ = ("_free", "_args", "released", "what", "rank", "__weakref__")

    def __init__(self, ctx: Any, what: str, free: Callable[..., Any], *args: Any,
                 rank: int = RANK_HANDLE) -> None:
        self._free = free
        self._args = args
        self.released = False
        self.what = what
        self.rank = rank
        if ctx is not None:
            ctx._adopt(self)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._free(*self._args)

    def __del__(self) -> None:
        if not getattr(self, "released", True):
            self.released = True
            defer_free(self._free, *self._args, rank=self.rank)


class _Handle:
    """Base of the Python objects that read a C handle."""

    _owner: Optional[_Owner]

    def __init__(self, ptr: Any, owner: _Owner) -> None:
        self._cptr = ptr
        self._owner = owner
        self._lock = threading.RLock()  # a handle is one thread's at a time

    def _ptr(self) -> Any:
        owner = self._owner
        if owner is None or owner.released:
            raise ClosedError("%s is closed (or its Context was closed)" % self._describe())
        return self._cptr

    def _describe(self) -> str:
        return type(self).__name__

    @property
    def closed(self) -> bool:
        """True once close() was called or the owning Context closed."""
        return self._owner is None or self._owner.released

    def close(self) -> None:
        """Drop this object's hold on the C handle (freed once nothing else
        from the same listing holds it). Safe to call twice."""
        self._owner = None

    def __enter__(self) -> "_Handle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Callbacks:
    """Trampolines for one call; exceptions raised inside them are kept and
    raised again after the C call returned (never through C)."""

    def __init__(self) -> None:
        self.exc: Optional[BaseException] = None
        self.canceled = False
        self._keep: List[Any] = []

    def progress(self, fn: Optional[ProgressFn], cancel_rc: int, ctype: str = "vsm_progress_fn") -> Any:
        """A C progress callback calling fn(done, total), or NULL."""
        if fn is None:
            return ffi.NULL

        def tramp(done: int, total: int, payload: Any) -> int:
            if self.exc is not None or self.canceled:
                return cancel_rc
            try:
                if fn(int(done), int(total)):
                    self.canceled = True
                    return cancel_rc
            except BaseException as e:  # kept, raised after the call
                self.exc = e
                return cancel_rc
            return 0

        cb = ffi.callback(ctype, tramp)
        self._keep.append(cb)
        return cb

    def state_reader(self, src: Any) -> Any:
        """A vsm_state_read_fn reading bytes or a binary file object."""
        if isinstance(src, (bytes, bytearray, memoryview)):
            src = io.BytesIO(bytes(src))

        def tramp(buf: Any, length: int, got: Any, payload: Any) -> int:
            try:
                data = src.read(length)
                n = len(data)
                ffi.memmove(buf, data, n)
                got[0] = n
                return 0
            except BaseException as e:
                self.exc = e
                return -7  # -VSM_EIO: any negative code aborts the call
        cb = ffi.callback("vsm_state_read_fn", tramp)
        self._keep.append(cb)
        return cb

    def state_writer(self, sink: Any) -> Any:
        """A vsm_state_write_fn appending to a binary file object."""
        def tramp(buf: Any, length: int, payload: Any) -> int:
            try:
                sink.write(ffi.buffer(buf, length)[:])
                return 0
            except BaseException as e:
                self.exc = e
                return -7
        cb = ffi.callback("vsm_state_write_fn", tramp)
        self._keep.append(cb)
        return cb

    def reraise(self, err: Error) -> None:
        """Raise what a callback raised, chained to the library's error."""
        if self.exc is not None:
            raise self.exc from err
