"""Placement (doc/placement.md): choose a datastore and reserve its space
(phase 1), then a host (phase 2); host tags and limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple

from . import _constants as K
from ._ffi import call, cstr, ffi, lib, pystr
from ._handle import _Handle, _Owner

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


def _strv(items: Optional[Sequence[str]], keep: List[Any]) -> Tuple[Any, int]:
    if not items:
        return ffi.NULL, 0
    strs = [cstr(s) for s in items]
    arr = ffi.new("char *[]", strs)
    keep += [strs, arr]
    return arr, len(strs)


def place_request(devices: Sequence[Any], keep: List[Any], *, state_size: int = 0,
                  thin: bool = False, require_caw: bool = False, cached: bool = False,
                  weigher: Optional[str] = None, datastores: Optional[Sequence[str]] = None,
                  reservation_ttl_ms: int = 0) -> Any:
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
    return req


def host_request(keep: List[Any], *, tags: Optional[Sequence[str]] = None,
                 anti_affinity: Optional[Sequence[str]] = None, weigher: Optional[str] = None,
                 migrate: bool = False, watch: bool = False) -> Any:
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
    return req


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
