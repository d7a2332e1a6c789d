"""Placement (doc/placement.md): choose a datastore and reserve its space
(phase 1), then a host (phase 2); host tags and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Tuple

from . import _constants as K
from ._ffi import call, cstr, ffi, lib, pystr
from ._handle import Callbacks, _Handle, _Owner
from .errors import Error

if TYPE_CHECKING:
    from .container import Container, DeviceSpec
    from .context import Context


@dataclass(frozen=True)
class Candidate:
    """A ranked candidate of a placement phase."""
    name: str
    score: float
    available: int


@dataclass(frozen=True)
class Placement:
    """The answer of a placement phase: candidates best first, and the
    rejected ones with their reasons."""
    candidates: Tuple[Candidate, ...]
    rejected: Tuple[Tuple[str, str], ...]

    @property
    def best(self) -> Optional[str]:
        """The best candidate's name, None when all were rejected."""
        return self.candidates[0].name if self.candidates else None

    @classmethod
    def _take(cls, p: Any) -> "Placement":
        try:
            cands = tuple(Candidate(pystr(lib.vsm_placement_name(p, i)) or "",
                                    float(lib.vsm_placement_score(p, i)),
                                    int(lib.vsm_placement_available(p, i)))
                          for i in range(lib.vsm_placement_count(p)))
            rej = tuple((pystr(lib.vsm_placement_rejected_name(p, i)) or "",
                         pystr(lib.vsm_placement_rejected_reason(p, i)) or "")
                        for i in range(lib.vsm_placement_rejected_count(p)))
            return cls(cands, rej)
        finally:
            lib.vsm_placement_free(p)


@dataclass(frozen=True)
class DatastoreInfo:
    """What phase 1 knows of one datastore, handed to a Filter or Weigher."""
    name: str
    uri: str
    total: int
    free_bytes: int
    reserved: int
    committed: int
    provisioned: int
    available: int
    containers: int
    has_compare_and_write: bool
    holds_base: bool
    need: int

    @classmethod
    def _of(cls, d: Any) -> "DatastoreInfo":
        return cls(pystr(d.name) or "", pystr(d.uri) or "", int(d.total), int(d.free_bytes),
                   int(d.reserved), int(d.committed), int(d.provisioned), int(d.available),
                   int(d.containers), bool(d.has_compare_and_write), bool(d.holds_base),
                   int(d.need))


@dataclass(frozen=True)
class HostInfo:
    """What phase 2 knows of one host, handed to a Filter or Weigher."""
    name: str
    tags: Tuple[str, ...]
    containers: int
    max_containers: int
    live: bool

    @classmethod
    def _of(cls, h: Any) -> "HostInfo":
        return cls(pystr(h.name) or "", tuple(pystr(h.tags[i]) or "" for i in range(h.n_tags)),
                   int(h.containers), int(h.max_containers), bool(h.live))


@dataclass(frozen=True)
class Filter:
    """A caller's placement filter: datastore(DatastoreInfo) and
    host(HostInfo) return None (or "") to keep the candidate, or the
    reason to reject it. They run with the context's lock held and must
    not call libvsm; an exception rejects the candidate and is raised
    again after the placement call."""
    name: str
    datastore: Optional[Callable[[DatastoreInfo], Optional[str]]] = None
    host: Optional[Callable[[HostInfo], Optional[str]]] = None


@dataclass(frozen=True)
class Weigher:
    """A caller's weigher: datastore(info) / host(info) return a score
    (higher ranks first), scaled over the candidates and multiplied."""
    name: str
    datastore: Optional[Callable[[DatastoreInfo], float]] = None
    host: Optional[Callable[[HostInfo], float]] = None
    multiplier: float = 1.0


def _filter_struct(f: Filter, keep: List[Any], cbs: Callbacks) -> Any:
    s = ffi.new("vsm_place_filter *")
    s.version = K.VSM_PLACE_FILTER_VERSION
    name = cstr(f.name)
    s.name = name
    keep += [s, name]

    def judge(fn: Callable[[Any], Any], info: Any, reason: Any, size: int) -> int:
        if cbs.exc is not None:
            why = "an earlier filter call raised"
        else:
            try:
                why = fn(info)
            except BaseException as e:
                cbs.exc = e
                why = "%s: %s" % (type(e).__name__, e)
        if not why:
            return 0
        text = str(why).encode()[: max(0, size - 1)]
        ffi.memmove(reason, text + b"\0", len(text) + 1)
        return 1
    if f.datastore is not None:
        fd = f.datastore
        cb = ffi.callback("int(vsm_place_ds_info *, char *, size_t, void *)",
                          lambda d, r, n, p: judge(fd, DatastoreInfo._of(d), r, n))
        keep.append(cb)
        s.datastore = cb
    if f.host is not None:
        fh = f.host
        cb = ffi.callback("int(vsm_place_host_info *, char *, size_t, void *)",
                          lambda h, r, n, p: judge(fh, HostInfo._of(h), r, n))
        keep.append(cb)
        s.host = cb
    return s


def _weigher_struct(w: Weigher, keep: List[Any], cbs: Callbacks) -> Any:
    s = ffi.new("vsm_place_weigher *")
    s.version = K.VSM_PLACE_WEIGHER_VERSION
    name = cstr(w.name)
    s.name = name
    s.multiplier = w.multiplier
    keep += [s, name]

    def score(fn: Callable[[Any], float], info: Any) -> float:
        if cbs.exc is not None:
            return 0.0
        try:
            return float(fn(info))
        except BaseException as e:
            cbs.exc = e
            return 0.0
    if w.datastore is not None:
        wd = w.datastore
        cb = ffi.callback("double(vsm_place_ds_info *, void *)",
                          lambda d, p: score(wd, DatastoreInfo._of(d)))
        keep.append(cb)
        s.datastore = cb
    if w.host is not None:
        wh = w.host
        cb = ffi.callback("double(vsm_place_host_info *, void *)",
                          lambda h, p: score(wh, HostInfo._of(h)))
        keep.append(cb)
        s.host = cb
    return s


def _callers(filters: Optional[Sequence[Filter]], weighers: Optional[Sequence[Weigher]],
             keep: List[Any], cbs: Callbacks) -> Tuple[Any, int, Any, int]:
    fl = [_filter_struct(f, keep, cbs) for f in filters or ()]
    wl = [_weigher_struct(w, keep, cbs) for w in weighers or ()]
    fa = ffi.new("vsm_place_filter *[]", fl) if fl else ffi.NULL
    wa = ffi.new("vsm_place_weigher *[]", wl) if wl else ffi.NULL
    keep += [fa, wa]
    return fa, len(fl), wa, len(wl)


def _strv(items: Optional[Sequence[str]], keep: List[Any]) -> Tuple[Any, int]:
    if not items:
        return ffi.NULL, 0
    strs = [cstr(s) for s in items]
    arr = ffi.new("char *[]", strs)
    keep += [strs, arr]
    return arr, len(strs)


def place_request(devices: Sequence[Any], keep: List[Any], cbs: Callbacks, *, state_size: int = 0,
                  thin: bool = False, require_caw: bool = False, cached: bool = False,
                  weigher: Optional[str] = None, datastores: Optional[Sequence[str]] = None,
                  reservation_ttl_ms: int = 0, filters: Optional[Sequence[Filter]] = None,
                  weighers: Optional[Sequence[Weigher]] = None) -> Any:
    """A vsm_place_request (its memory kept alive by @keep)."""
    from .container import DeviceSpec, _spec_struct
    specs = [_spec_struct(DeviceSpec.of(d), keep) for d in devices]
    arr = ffi.new("vsm_device_spec *[]", specs)
    req = ffi.new("vsm_place_request *")
    keep += [arr, req]
    req.version = K.VSM_PLACE_REQUEST_VERSION
    req.devices = arr
    req.n_devices = len(specs)
    req.state_size = state_size
    req.flags = ((K.VSM_PLACE_THIN if thin else 0) | (K.VSM_PLACE_REQUIRE_CAW if require_caw else 0) |
                 (K.VSM_PLACE_CACHED if cached else 0))
    w = cstr(weigher)
    keep.append(w)
    req.weigher = w
    req.datastores, req.n_datastores = _strv(datastores, keep)
    req.reservation_ttl_ms = reservation_ttl_ms
    req.filters, req.n_filters, req.weighers, req.n_weighers = _callers(filters, weighers, keep, cbs)
    return req


def host_request(keep: List[Any], cbs: Callbacks, *, tags: Optional[Sequence[str]] = None,
                 anti_affinity: Optional[Sequence[str]] = None, weigher: Optional[str] = None,
                 migrate: bool = False, watch: bool = False,
                 filters: Optional[Sequence[Filter]] = None,
                 weighers: Optional[Sequence[Weigher]] = None) -> Any:
    """A vsm_host_request (its memory kept alive by @keep)."""
    req = ffi.new("vsm_host_request *")
    keep.append(req)
    req.version = K.VSM_HOST_REQUEST_VERSION
    req.flags = ((K.VSM_PLACE_HOST_MIGRATE if migrate else 0) |
                 (K.VSM_PLACE_HOST_WATCH if watch else 0))
    req.tags, req.n_tags = _strv(tags, keep)
    req.anti_affinity, req.n_anti_affinity = _strv(anti_affinity, keep)
    w = cstr(weigher)
    keep.append(w)
    req.weigher = w
    req.filters, req.n_filters, req.weighers, req.n_weighers = _callers(filters, weighers, keep, cbs)
    return req


def run_placement(cbs: Callbacks, fn: Any, *args: Any) -> None:
    """Call a placement function; raise what a caller's filter or weigher
    raised (after the call, also when it succeeded)."""
    try:
        call(fn, *args)
    except Error as e:
        cbs.reraise(e)
        raise
    if cbs.exc is not None:
        raise cbs.exc


class Reservation(_Handle):
    """Space reserved on the datastore phase 1 chose, for one container;
    create_container() commits it, abort() or close() gives it back."""

    def __init__(self, ctx: "Context", ptr: Any) -> None:
        super().__init__(ptr, _Owner(ctx, "reservation", lib.vsm_reservation_free, ptr))
        self.context = ctx

    def _describe(self) -> str:
        return "vsm.Reservation"

    @property
    def datastore(self) -> str:
        """The datastore chosen."""
        return pystr(lib.vsm_reservation_datastore(self._ptr())) or ""

    @property
    def name(self) -> str:
        """The container name it is for."""
        return pystr(lib.vsm_reservation_name(self._ptr())) or ""

    @property
    def bytes(self) -> int:
        """Bytes held."""
        return int(lib.vsm_reservation_bytes(self._ptr()))

    @property
    def expires(self) -> int:
        """When it lapses (ms since the epoch)."""
        return int(lib.vsm_reservation_expires(self._ptr()))

    def abort(self) -> None:
        """Give the space back now."""
        with self._lock:
            call(lib.vsm_reservation_abort, self._ptr())

    def create_container(self, devices: Sequence["DeviceSpec"], *, state_size: int = 0,
                         thin: bool = False) -> "Container":
        """Create the container on the reserved datastore (commits the
        reservation)."""
        from .container import Container, DeviceSpec, _spec_struct
        keep: List[Any] = []
        specs = [_spec_struct(DeviceSpec.of(d), keep) for d in devices]
        arr = ffi.new("vsm_device_spec *[]", specs)
        opts = ffi.new("vsm_container_opts *")
        opts.version = K.VSM_CONTAINER_OPTS_VERSION
        opts.devices = arr
        opts.n_devices = len(specs)
        opts.state_size = state_size
        opts.flags = K.VSM_CONTAINER_CREATE_THIN if thin else 0
        out = ffi.new("vsm_container **")
        with self._lock:
            call(lib.vsm_container_create_reserved, out, self._ptr(), opts)
        return Container._own(self.context, out[0])
