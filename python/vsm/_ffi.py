"""Loading libvsm through cffi (ABI mode) and the helpers every wrapper uses.

The library is found through $VSM_LIBRARY (a path, for a build tree), else
by its soname libvsm.so.0 as the dynamic linker finds it. cffi releases the
GIL around every call into the library, so Python threads run while one of
them waits in libvsm.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Any, Callable, Deque, Optional, Tuple

import cffi

from ._cdefs import CDEFS

ffi = cffi.FFI()
ffi.cdef(CDEFS)


def _load() -> Any:
    path = os.environ.get("VSM_LIBRARY")
    names = [path] if path else ["libvsm.so.0", "libvsm.so"]
    last: Optional[Exception] = None
    for name in names:
        try:
            return ffi.dlopen(name)
        except OSError as e:  # try the next name
            last = e
    raise ImportError("vsm: cannot load libvsm (%s); set VSM_LIBRARY to the "
                      "path of libvsm.so.0" % last)


lib = _load()

# Frees that __del__ asked for. They run at the next call made through
# call() (after it has read the thread's last error, which any libvsm call
# would clear) and when a Context closes, never inside the garbage
# collector, which may run between a failing call and vsm_error_last().
# Three ranks, run in order: images (which need their group, container
# or context open), then other handles, then contexts.
_Free = Tuple[Callable[..., Any], Tuple[Any, ...]]
_pending: Tuple[Deque[_Free], ...] = tuple(collections.deque() for _ in range(3))
_pending_lock = threading.Lock()
RANK_IMAGE, RANK_HANDLE, RANK_CONTEXT = 0, 1, 2


def defer_free(fn: Callable[..., Any], *args: Any, rank: int = RANK_HANDLE) -> None:
    """Queue fn(*args) to run outside the garbage collector, after the
    frees of lower rank."""
    _pending[rank].append((fn, args))


def run_pending() -> None:
    """Run the frees that __del__ queued, by rank."""
    if not any(_pending):
        return
    with _pending_lock:
        for q in _pending:
            while True:
                try:
                    fn, args = q.popleft()
                except IndexError:
                    break
                fn(*args)


def cstr(s: Optional[str]) -> Any:
    """A NUL-terminated char[] for @s (kept alive by the caller), or NULL."""
    if s is None:
        return ffi.NULL
    if not isinstance(s, str):
        s = os.fspath(s)
        if isinstance(s, bytes):
            return ffi.new("char[]", s)
    return ffi.new("char[]", s.encode())


def pystr(p: Any) -> Optional[str]:
    """A Python str from a const char * the library returned, None for NULL."""
    if p == ffi.NULL:
        return None
    return ffi.string(p).decode(errors="surrogateescape")


def call(fn: Callable[..., int], *args: Any) -> int:
    """Call a libvsm function that returns 0/count or -VSM_E*; raise on < 0."""
    rc = fn(*args)
    if rc < 0:
        err = lib.vsm_error_last()
        code = -rc
        msg = None
        if err != ffi.NULL:
            msg = pystr(err.message)
        run_pending()
        from .errors import error_for
        raise error_for(code, msg)
    run_pending()
    return rc
