"""vsm.Context: one open libvsm instance, and the inventory it keeps
(datastores, hosts, links), leases, events and orphan checks."""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from . import _constants as K
from ._ffi import RANK_CONTEXT, call, cstr, defer_free, ffi, lib, pystr, run_pending
from ._handle import Callbacks, ProgressFn, _Owner
from .errors import ClosedError, Error

PathLike = Union[str, "os.PathLike[str]"]

LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR = 0, 1, 2, 3

EVENT_DATASTORE_CHANGED = 1
EVENT_LEASE_LOST = 2
EVENT_DATASTORE_LOST = 3
EVENT_MIGRATION = 4

_open_contexts: "weakref.WeakSet[Context]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Library threads (events, heartbeats) must stop before the interpreter.
    for ctx in list(_open_contexts):
        ctx.close()


@dataclass(frozen=True)
class Event:
    """One event, copied out of the library's callback."""
    type: int
    type_name: str
    datastore: Optional[str]
    container: Optional[str]
    host: Optional[str]
    detail: Optional[str]
    generation: int


@dataclass(frozen=True)
class Lease:
    """One container's lease as Context.leases() saw it."""
    container: str
    host: Optional[str]
    state: int
    state_name: str
    since_ms: int
    version: int
    stopped_ms: int
    is_mine: bool


@dataclass(frozen=True)
class Orphan:
    """A device on a datastore that no record references."""
    key: str
    size: int
    age: int
    state: int
    state_name: str
    reason: Optional[str]


@dataclass(frozen=True)
class CheckReport:
    """What Context.check_datastore() found."""
    datastore: str
    devices: int
    referenced: int
    foreign: int
    remaining: int
    orphans: Tuple[Orphan, ...]


class Datastore:
    """A registered datastore: a snapshot of its name, URI, UUID and
    generation at lookup time; capacity() asks the storage now."""

    def __init__(self, ctx: "Context", name: str, uri: str, uuid: Optional[str], generation: int) -> None:
        self.context = ctx
        self.name = name
        self.uri = uri
        self.uuid = uuid
        self.generation = generation

    def __repr__(self) -> str:
        return "<vsm.Datastore %r %s>" % (self.name, self.uri)

    def capacity(self) -> Tuple[int, int]:
        """(total bytes, free bytes) as the storage reports them now."""
        total = ffi.new("uint64_t *")
        free = ffi.new("uint64_t *")
        call(lib.vsm_datastore_capacity, self.context._ptr(), cstr(self.name), total, free)
        return int(total[0]), int(free[0])

    def remove(self, force: bool = False) -> None:
        """Forget the datastore (nothing on it is deleted)."""
        self.context.remove_datastore(self.name, force=force)

    def containers(self) -> Iterator["Container"]:
        """The containers on this datastore, sorted by name."""
        return self.context.containers(self.name)

    def leases(self, watch: bool = False) -> Iterator[Lease]:
        """The lease of every container here (see Context.leases)."""
        return self.context.leases(self.name, watch=watch)


class Host:
    """A registered host: a snapshot of its name, hypervisor URI and the
    datastores it is linked to."""

    def __init__(self, ctx: "Context", name: str, hypervisor_uri: Optional[str],
                 datastores: Tuple[str, ...], tags: Tuple[str, ...] = (),
                 max_containers: int = 0) -> None:
        self.context = ctx
        self.name = name
        self.hypervisor_uri = hypervisor_uri
        self.datastores = datastores
        self.tags = tags
        """"KEY" or "KEY=VALUE", sorted."""
        self.max_containers = max_containers
        """Its limit of attached containers; 0 = none."""

    def tag(self, tag: str) -> None:
        """Add (or replace) tag "KEY" or "KEY=VALUE"."""
        self.context.tag_host(self.name, tag)

    def untag(self, key: str) -> None:
        """Remove the tag with KEY."""
        self.context.untag_host(self.name, key)

    def __repr__(self) -> str:
        return "<vsm.Host %r>" % self.name

    def link(self, datastore: str) -> None:
        """Record that this host reaches @datastore."""
        self.context.link(self.name, datastore)

    def unlink(self, datastore: str) -> None:
        """Remove the link to @datastore."""
        self.context.unlink(self.name, datastore)

    def remove(self) -> None:
        """Forget the host."""
        self.context.remove_host(self.name)


class Context:
    """An open libvsm instance on a state directory (its catalog).

    Use it as a context manager, or call close(). Closing it frees every
    container and image handle still open from it; those objects then raise
    vsm.ClosedError. Several threads may use one Context at once (the
    library serializes inside); one Container or Image is one thread's at
    a time (the binding serializes each handle's calls).

    @state_dir: the catalog's directory (created if missing); None:
        $VSM_STATE_DIR, else ~/.local/state/vsm
    @log: log(level, message), called from any thread; None drops them
    @lease_manual: no lease renewal thread (call renew_leases() yourself)
    @backend_dir: where backend modules are loaded from ("" for none)
    """

    def __init__(self, state_dir: Optional[PathLike] = None, *,
                 log: Optional[Callable[[int, str], Any]] = None,
                 log_level: int = LOG_INFO, lease_manual: bool = False,
                 backend_dir: Optional[str] = None) -> None:
        self._cptr: Any = None
        self._children: "weakref.WeakSet[_Owner]" = weakref.WeakSet()
        self._children_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._event_cbs: Dict[int, Any] = {}
        self._kept: List[Any] = []  # callbacks the library holds until it is freed
        self.callback_errors: List[BaseException] = []
        """Exceptions raised by event or log callbacks (which run on library
        threads, where nothing could catch them)."""
        opts = ffi.new("vsm_ctx_opts *")
        opts.version = K.VSM_CTX_OPTS_VERSION
        keep = [cstr(os.fspath(state_dir)) if state_dir is not None else ffi.NULL,
                cstr(backend_dir)]
        opts.state_dir = keep[0]
        opts.backend_dir = keep[1]
        opts.log_level = log_level
        opts.flags = K.VSM_CTX_LEASE_MANUAL if lease_manual else 0
        self._log_cb = ffi.NULL
        if log is not None:
            def tramp(level: int, message: Any, payload: Any) -> None:
                try:
                    log(int(level), pystr(message) or "")
                except BaseException as e:
                    self.callback_errors.append(e)
            self._log_cb = ffi.callback("vsm_log_cb", tramp)
        opts.log_cb = self._log_cb
        out = ffi.new("vsm_ctx **")
        call(lib.vsm_ctx_open, out, opts)
        self._cptr = out[0]
        _open_contexts.add(self)

    # -- lifetime
    def _ptr(self) -> Any:
        if self._cptr is None:
            raise ClosedError("vsm.Context is closed")
        return self._cptr

    def _adopt(self, owner: _Owner) -> None:
        self._ptr()
        with self._children_lock:
            self._children.add(owner)

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._cptr is None

    def close(self) -> None:
        """Free every handle still open from this context, then the
        context. Safe to call twice; must not race with calls that other
        threads make on this context or its objects."""
        with self._close_lock:
            if self._cptr is None:
                return
            with self._children_lock:
                children = list(self._children)
                self._children = weakref.WeakSet()
            run_pending()
            for owner in sorted(children, key=lambda o: o.rank):  # images first
                owner.release()
            ptr, self._cptr = self._cptr, None
            _open_contexts.discard(self)
            lib.vsm_ctx_free(ptr)  # joins the event thread; the GIL is released
            self._event_cbs.clear()
            self._kept.clear()

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # Dropped without close(): its handles are unreachable too, and
        # their frees are queued; queue this one after them.
        if getattr(self, "_cptr", None) is not None:
            with self._children_lock:
                children = list(self._children)
            defer_free(self._free_late, children, self._cptr, self._log_cb, self._event_cbs,
                       self._kept, rank=RANK_CONTEXT)
            self._cptr = None

    @staticmethod
    def _free_late(children: List[_Owner], ptr: Any, *keep: Any) -> None:
        for owner in sorted(children, key=lambda o: o.rank):
            owner.release()
        lib.vsm_ctx_free(ptr)

    def __repr__(self) -> str:
        if self._cptr is None:
            return "<vsm.Context closed>"
        return "<vsm.Context %s>" % self.state_dir

    @property
    def state_dir(self) -> str:
        """The context's state directory."""
        return pystr(lib.vsm_ctx_state_dir(self._ptr())) or ""

    def recover(self, datastore: Optional[str] = None) -> int:
        """Finish interrupted workflows; returns how many could not be."""
        return call(lib.vsm_ctx_recover, self._ptr(), cstr(datastore), 0)

    def has_backend(self, uri: str) -> bool:
        """Whether a backend serves @uri's scheme."""
        from .errors import NotFoundError
        try:
            call(lib.vsm_backend_lookup, self._ptr(), cstr(uri))
            return True
        except NotFoundError:
            return False

    # -- datastores
    def add_datastore(self, name: str, uri: str, *, create: bool = False) -> Datastore:
        """Register and open datastore @name at @uri ("file:///srv/ds1");
        create=True makes the storage (directory) if it is missing."""
        call(lib.vsm_datastore_add, self._ptr(), cstr(name), cstr(uri),
             K.VSM_DATASTORE_ADD_CREATE if create else 0)
        return self.datastore(name)

    def remove_datastore(self, name: str, *, force: bool = False) -> None:
        """Forget datastore @name; BusyError while a container there is
        attached, unless force."""
        call(lib.vsm_datastore_remove, self._ptr(), cstr(name),
             K.VSM_DATASTORE_REMOVE_FORCE if force else 0)

    def _ds(self, p: Any) -> Datastore:
        return Datastore(self, pystr(lib.vsm_datastore_name(p)) or "",
                         pystr(lib.vsm_datastore_uri(p)) or "",
                         pystr(lib.vsm_datastore_uuid(p)),
                         int(lib.vsm_datastore_generation(p)))

    def datastore(self, name: str) -> Datastore:
        """Datastore @name; NotFoundError if none."""
        out = ffi.new("vsm_datastore **")
        call(lib.vsm_datastore_lookup, out, self._ptr(), cstr(name))
        try:
            return self._ds(out[0])
        finally:
            lib.vsm_datastore_free(out[0])

    def datastores(self) -> Iterator[Datastore]:
        """All registered datastores, sorted by name."""
        out = ffi.new("vsm_datastore ***")
        n = ffi.new("size_t *")
        call(lib.vsm_datastore_list, out, n, self._ptr())
        try:
            items = [self._ds(out[0][i]) for i in range(n[0])]
        finally:
            lib.vsm_datastore_list_free(out[0], n[0])
        return iter(items)

    # -- hosts
    def add_host(self, name: str, *, hypervisor_uri: Optional[str] = None) -> Host:
        """Register host @name."""
        opts = ffi.new("vsm_host_opts *")
        opts.version = K.VSM_HOST_OPTS_VERSION
        uri = cstr(hypervisor_uri)
        opts.hypervisor_uri = uri
        call(lib.vsm_host_add, self._ptr(), cstr(name), opts)
        return self.host(name)

    def remove_host(self, name: str) -> None:
        """Forget host @name; BusyError while a container is attached to it."""
        call(lib.vsm_host_remove, self._ptr(), cstr(name), 0)

    def link(self, host: str, datastore: str) -> None:
        """Record that @host reaches @datastore."""
        call(lib.vsm_host_link, self._ptr(), cstr(host), cstr(datastore), 0)

    def unlink(self, host: str, datastore: str) -> None:
        """Remove the link between @host and @datastore."""
        call(lib.vsm_host_unlink, self._ptr(), cstr(host), cstr(datastore), 0)

    def _host(self, p: Any) -> Host:
        n = lib.vsm_host_datastore_count(p)
        return Host(self, pystr(lib.vsm_host_name(p)) or "",
                    pystr(lib.vsm_host_hypervisor_uri(p)),
                    tuple(pystr(lib.vsm_host_datastore(p, i)) or "" for i in range(n)),
                    tuple(pystr(lib.vsm_host_tag(p, i)) or ""
                          for i in range(lib.vsm_host_tag_count(p))),
                    int(lib.vsm_host_max_containers(p)))

    def tag_host(self, host: str, tag: str) -> None:
        """Give @host tag "KEY" or "KEY=VALUE" (replacing KEY's value)."""
        call(lib.vsm_host_tag_add, self._ptr(), cstr(host), cstr(tag))

    def untag_host(self, host: str, key: str) -> None:
        """Remove @host's tag KEY."""
        call(lib.vsm_host_tag_remove, self._ptr(), cstr(host), cstr(key))

    def set_host_limit(self, host: str, max_containers: int) -> None:
        """Limit how many containers attach to @host (0: no limit)."""
        call(lib.vsm_host_set_max_containers, self._ptr(), cstr(host), max_containers)

    # -- placement
    def place_datastore(self, devices: Sequence["DeviceSpec"], **kw: Any) -> "Placement":
        """Phase 1: rank the datastores for a container of @devices
        (keywords: state_size, thin, require_caw, cached, weigher,
        datastores, filters=[vsm.Filter], weighers=[vsm.Weigher])."""
        from .placement import Placement, place_request, run_placement
        keep: List[Any] = []
        cbs = Callbacks()
        req = place_request(devices, keep, cbs, **kw)
        out = ffi.new("vsm_placement **")
        run_placement(cbs, lib.vsm_place_datastore, out, self._ptr(), req)
        return Placement._take(out[0])

    def reserve(self, name: str, devices: Sequence["DeviceSpec"], **kw: Any) -> "Reservation":
        """Phase 1, then reserve the space on the best datastore for
        container @name (keywords as place_datastore, and
        reservation_ttl_ms)."""
        from .placement import Reservation, place_request, run_placement
        keep: List[Any] = []
        cbs = Callbacks()
        req = place_request(devices, keep, cbs, **kw)
        out = ffi.new("vsm_reservation **")
        run_placement(cbs, lib.vsm_place_reserve, out, self._ptr(), cstr(name), req)
        return Reservation(self, out[0])

    def place_host_for(self, datastores: Sequence[str], **kw: Any) -> "Placement":
        """Phase 2 for a container not made yet, whose devices are on
        @datastores (keywords: tags, anti_affinity, weigher, watch,
        filters, weighers)."""
        from .placement import Placement, _strv, host_request, run_placement
        keep: List[Any] = []
        cbs = Callbacks()
        req = host_request(keep, cbs, **kw)
        arr, n = _strv(datastores, keep)
        out = ffi.new("vsm_placement **")
        run_placement(cbs, lib.vsm_place_host_for, out, self._ptr(), arr, n, req)
        return Placement._take(out[0])

    # -- workflows
    def parse_workflow(self, text: str, origin: Optional[str] = None) -> "Workflow":
        """Parse a workflow template from JSON text."""
        from . import workflow
        return workflow.parse(self, text, origin)

    def load_workflow(self, path: PathLike) -> "Workflow":
        """Parse the workflow template in file @path."""
        from . import workflow
        return workflow.load(self, os.fspath(path))

    def workflow_runs(self) -> Iterator["Run"]:
        """Every workflow run the catalog keeps."""
        from . import workflow
        return iter(workflow.runs(self))

    def workflow_run(self, run_id: str) -> "Run":
        """Workflow run @run_id."""
        from . import workflow
        return workflow.lookup_run(self, run_id)

    def cancel_run(self, run_id: str) -> None:
        """Ask run @run_id (in this or another process) to stop and roll back."""
        call(lib.vsm_run_cancel, self._ptr(), cstr(run_id))

    def register_workflow_op(self, name: str, schema: Any, run: Callable[..., Any],
                             undo: Optional[Callable[..., Any]] = None) -> None:
        """Add workflow operation @name written in Python (see
        vsm.workflow.register_op)."""
        from . import workflow
        workflow.register_op(self, name, schema, run, undo)

    def _keep_callbacks(self, cbs: List[Any]) -> None:
        self._kept.extend(cbs)

    def recover_workflows(self) -> int:
        """Roll back runs that dead processes left; returns what it answers."""
        return call(lib.vsm_workflow_recover, self._ptr())

    def recover_group(self, directory: PathLike, datastore: str, *, name: Optional[str] = None,
                      point: Optional[str] = None, host: Optional[str] = None,
                      start: bool = False, tier_timeout_ms: int = 0,
                      step: Optional[Callable[[Optional[str], str, Optional[str]], Any]] = None
                      ) -> "Group":
        """Rebuild a group from the backup sets in @directory onto
        @datastore (attached to @host and deployed when given; start=True
        also starts the domains in boot order). step(member, step, detail)
        is told each step (member None for the group's own); what it
        raises is raised after the call."""
        from .group import Group
        opts = ffi.new("vsm_group_recover_opts *")
        opts.version = K.VSM_GROUP_RECOVER_OPTS_VERSION
        keep = [cstr(datastore), cstr(name), cstr(point), cstr(host)]
        opts.datastore, opts.name, opts.point, opts.host = keep
        opts.flags = K.VSM_GROUP_RECOVER_START if start else 0
        opts.tier_timeout_ms = tier_timeout_ms
        raised: List[BaseException] = []
        if step is not None:
            def tramp(member: Any, what: Any, detail: Any, payload: Any) -> None:
                if raised:
                    return
                try:
                    step(pystr(member), pystr(what) or "", pystr(detail))
                except BaseException as e:
                    raised.append(e)
            cb = ffi.callback("vsm_group_recover_step_fn", tramp)
            keep.append(cb)
            opts.step = cb
        out = ffi.new("vsm_group **")
        try:
            call(lib.vsm_group_recover, out, self._ptr(), cstr(os.fspath(directory)), opts)
        except Error as e:
            if raised:
                raise raised[0] from e
            raise
        g = Group._own(self, out[0])
        if raised:
            raise raised[0]
        return g

    # -- groups
    def create_group(self, name: str, members: Sequence["Container"], *,
                     datastore: Optional[str] = None) -> "Group":
        """Make consistency group @name of @members (its record on
        @datastore, or on the first member's)."""
        from .group import Group
        ptrs = [m._ptr() for m in members]
        arr = ffi.new("vsm_container *[]", ptrs)
        opts = ffi.new("vsm_group_opts *")
        opts.version = K.VSM_GROUP_OPTS_VERSION
        ds = cstr(datastore)
        opts.datastore = ds
        out = ffi.new("vsm_group **")
        call(lib.vsm_group_create, out, self._ptr(), cstr(name), arr, len(ptrs), opts)
        return Group._own(self, out[0])

    def group(self, name: str, datastore: Optional[str] = None) -> "Group":
        """Group @name (on @datastore, or wherever it is)."""
        from .group import Group
        out = ffi.new("vsm_group **")
        call(lib.vsm_group_lookup, out, self._ptr(), cstr(datastore), cstr(name))
        return Group._own(self, out[0])

    def groups(self) -> Iterator["Group"]:
        """Every group, sorted by datastore then name."""
        from .group import Group
        out = ffi.new("vsm_group ***")
        n = ffi.new("size_t *")
        call(lib.vsm_group_list, out, n, self._ptr())
        count = int(n[0])
        owner = _Owner(self, "group list", lib.vsm_group_list_free, out[0], count)
        items = [Group(self, out[0][i], owner) for i in range(count)]
        del owner
        return iter(items)

    def host(self, name: str) -> Host:
        """Host @name; NotFoundError if none."""
        out = ffi.new("vsm_host **")
        call(lib.vsm_host_lookup, out, self._ptr(), cstr(name))
        try:
            return self._host(out[0])
        finally:
            lib.vsm_host_free(out[0])

    def hosts(self) -> Iterator[Host]:
        """All hosts, sorted by name."""
        out = ffi.new("vsm_host ***")
        n = ffi.new("size_t *")
        call(lib.vsm_host_list, out, n, self._ptr())
        try:
            items = [self._host(out[0][i]) for i in range(n[0])]
        finally:
            lib.vsm_host_list_free(out[0], n[0])
        return iter(items)

    # -- containers
    def create_container(self, datastore: str, name: str,
                         devices: Sequence["DeviceSpec"], *, state_size: int = 0,
                         thin: bool = False) -> "Container":
        """Create container @name on @datastore with @devices (all or
        nothing) and return it."""
        from .container import Container, DeviceSpec, _spec_struct
        if not devices:
            raise ValueError("a container needs at least one device")
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
        call(lib.vsm_container_create, out, self._ptr(), cstr(datastore), cstr(name), opts)
        return Container._own(self, out[0])

    def container(self, name: str, datastore: Optional[str] = None) -> "Container":
        """Container @name (on @datastore, or on whichever holds it)."""
        from .container import Container
        out = ffi.new("vsm_container **")
        call(lib.vsm_container_lookup, out, self._ptr(), cstr(datastore), cstr(name))
        return Container._own(self, out[0])

    def container_by_uuid(self, uuid: str) -> "Container":
        """The container with UUID @uuid, on any datastore."""
        from .container import Container
        out = ffi.new("vsm_container **")
        call(lib.vsm_container_lookup_by_uuid, out, self._ptr(), cstr(uuid))
        return Container._own(self, out[0])

    def containers(self, datastore: Optional[str] = None) -> Iterator["Container"]:
        """Containers on @datastore (on all when None), sorted by datastore
        then name. Each is an independent handle."""
        from .container import Container
        out = ffi.new("vsm_container ***")
        n = ffi.new("size_t *")
        call(lib.vsm_container_list, out, n, self._ptr(), cstr(datastore))
        count = int(n[0])
        owner = _Owner(self, "container list", lib.vsm_container_list_free, out[0], count)
        items = [Container(self, out[0][i], owner) for i in range(count)]
        del owner
        return iter(items)

    def import_bundle(self, path: PathLike, datastore: str, name: Optional[str] = None, *,
                      progress: Optional[ProgressFn] = None) -> Tuple["Container", "BundleStats"]:
        """Load a bundle file into @datastore as container @name (None: the
        bundle's name); returns the container and what was moved."""
        from .container import BundleStats, Container
        cbs = Callbacks()
        stats = ffi.new("vsm_bundle_stats *")
        opts = ffi.new("vsm_bundle_opts *")
        opts.version = K.VSM_BUNDLE_OPTS_VERSION
        opts.progress = cbs.progress(progress, -17)
        opts.stats = stats
        out = ffi.new("vsm_container **")
        try:
            call(lib.vsm_bundle_import, out, self._ptr(), cstr(os.fspath(path)), cstr(datastore),
                 cstr(name), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        return Container._own(self, out[0]), BundleStats._of(stats)

    def restore(self, paths: Sequence[PathLike], datastore: str, name: Optional[str] = None, *,
                progress: Optional[ProgressFn] = None) -> Tuple["Container", "BackupStats"]:
        """Rebuild a container on @datastore from a full backup and the
        incrementals after it (in order)."""
        from .container import BackupStats, Container
        cbs = Callbacks()
        keep = [cstr(os.fspath(p)) for p in paths]
        arr = ffi.new("char *[]", keep)
        stats = ffi.new("vsm_backup_stats *")
        opts = ffi.new("vsm_restore_opts *")
        opts.version = K.VSM_RESTORE_OPTS_VERSION
        nm = cstr(name)
        opts.name = nm
        opts.progress = cbs.progress(progress, -17)
        opts.stats = stats
        out = ffi.new("vsm_container **")
        try:
            call(lib.vsm_restore, out, self._ptr(), arr, len(keep), cstr(datastore), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        return Container._own(self, out[0]), BackupStats._of(stats)

    # -- images on a datastore
    def open_device_image(self, datastore: str, container: str, device: str, *,
                          writable: bool = False, no_backing: bool = False) -> "Image":
        """Open a container's device as a vsm.Image (read-only unless
        writable). Close it before the Context (Context.close() does)."""
        from .image import Image, _open_opts
        keep: List[Any] = []
        opts = _open_opts(keep, readonly=not writable, no_backing=no_backing, rdwr=writable)
        out = ffi.new("vsm_image **")
        call(lib.vsm_image_open_device, out, self._ptr(), cstr(datastore), cstr(container),
             cstr(device), opts)
        return Image._own(self, out[0], "%s/%s:%s" % (datastore, container, device))

    def open_golden_image(self, datastore: str, name: str, *, writable: bool = False) -> "Image":
        """Open golden image @name of @datastore as a vsm.Image."""
        from .image import Image, _open_opts
        keep: List[Any] = []
        opts = _open_opts(keep, readonly=not writable, rdwr=writable)
        out = ffi.new("vsm_image **")
        call(lib.vsm_image_open_golden, out, self._ptr(), cstr(datastore), cstr(name), opts)
        return Image._own(self, out[0], "%s:%s" % (datastore, name))

    def import_image(self, datastore: str, name: str, path: PathLike, *,
                     format: Optional[str] = None) -> None:
        """Copy the local image @path onto @datastore as golden image @name."""
        from .image import _convert_opts
        keep: List[Any] = []
        opts = _convert_opts(keep, format, 0) if format else ffi.NULL
        call(lib.vsm_image_import, self._ptr(), cstr(datastore), cstr(name),
             cstr(os.fspath(path)), opts, 0)

    def export_image(self, datastore: str, name: str, path: PathLike, *,
                     format: Optional[str] = None, cluster_size: int = 0) -> None:
        """Write golden image @name of @datastore into a new local file."""
        from .image import _convert_opts
        keep: List[Any] = []
        opts = _convert_opts(keep, format, cluster_size) if format else ffi.NULL
        call(lib.vsm_image_export, self._ptr(), cstr(datastore), cstr(name),
             cstr(os.fspath(path)), opts, 0)

    # -- leases
    def leases(self, datastore: str, *, watch: bool = False) -> Iterator[Lease]:
        """The lease of every container on @datastore, by container name;
        watch=True watches heartbeats long enough to tell live from stopped."""
        out = ffi.new("vsm_lease ***")
        n = ffi.new("size_t *")
        call(lib.vsm_lease_status, out, n, self._ptr(), cstr(datastore),
             K.VSM_LEASE_STATUS_WATCH if watch else 0)
        try:
            items = []
            for i in range(n[0]):
                p = out[0][i]
                st = int(lib.vsm_lease_state_of(p))
                items.append(Lease(pystr(lib.vsm_lease_container(p)) or "",
                                   pystr(lib.vsm_lease_host(p)), st,
                                   pystr(lib.vsm_lease_state_name(st)) or "",
                                   int(lib.vsm_lease_since(p)), int(lib.vsm_lease_version(p)),
                                   int(lib.vsm_lease_stopped_ms(p)),
                                   bool(lib.vsm_lease_is_mine(p))))
        finally:
            lib.vsm_lease_list_free(out[0], n[0])
        return iter(items)

    def keep_leases(self, host: str) -> None:
        """Keep @host's heartbeat alive on its datastores while this runs."""
        call(lib.vsm_lease_keep, self._ptr(), cstr(host), 0)

    def renew_leases(self) -> int:
        """Renew heartbeats now and look for other hosts' changes; returns
        milliseconds until the next renewal is due."""
        return call(lib.vsm_lease_renew, self._ptr(), 0)

    # -- events
    def on_event(self, callback: Callable[[Event], Any]) -> int:
        """Deliver events to callback(event); returns an id for
        remove_event(). The callback runs on a library thread; what it
        raises is kept in callback_errors."""
        def tramp(ev: Any, payload: Any) -> None:
            try:
                t = int(lib.vsm_event_type_of(ev))
                callback(Event(t, pystr(lib.vsm_event_type_name(t)) or "",
                               pystr(lib.vsm_event_datastore(ev)),
                               pystr(lib.vsm_event_container(ev)),
                               pystr(lib.vsm_event_host(ev)),
                               pystr(lib.vsm_event_detail(ev)),
                               int(lib.vsm_event_generation(ev))))
            except BaseException as e:
                self.callback_errors.append(e)
        cb = ffi.callback("vsm_event_cb", tramp)
        out = ffi.new("int *")
        call(lib.vsm_event_register, self._ptr(), cb, ffi.NULL, out)
        self._event_cbs[int(out[0])] = cb
        return int(out[0])

    def remove_event(self, id: int) -> None:
        """Stop delivering to the callback registered as @id."""
        call(lib.vsm_event_unregister, self._ptr(), id)
        # Delivery has stopped; the trampoline may go.
        self._event_cbs.pop(id, None)

    # -- checks
    def check_datastore(self, datastore: str, *, repair: bool = False,
                        grace_seconds: int = K.VSM_CHECK_GRACE_DEFAULT) -> CheckReport:
        """List (and with repair=True remove) the orphaned devices of
        @datastore."""
        opts = ffi.new("vsm_check_opts *")
        opts.version = K.VSM_CHECK_OPTS_VERSION
        opts.flags = K.VSM_CHECK_REPAIR if repair else 0
        opts.grace_seconds = grace_seconds
        out = ffi.new("vsm_check_report **")
        call(lib.vsm_datastore_check, out, self._ptr(), cstr(datastore), opts)
        r = out[0]
        try:
            orphans = []
            for i in range(lib.vsm_check_report_orphan_count(r)):
                o = lib.vsm_check_report_orphan(r, i)
                st = int(lib.vsm_orphan_state_of(o))
                orphans.append(Orphan(pystr(lib.vsm_orphan_key(o)) or "", int(lib.vsm_orphan_size(o)),
                                      int(lib.vsm_orphan_age(o)), st,
                                      pystr(lib.vsm_orphan_state_name(st)) or "",
                                      pystr(lib.vsm_orphan_reason(o))))
            return CheckReport(pystr(lib.vsm_check_report_datastore(r)) or datastore,
                               int(lib.vsm_check_report_devices(r)),
                               int(lib.vsm_check_report_referenced(r)),
                               int(lib.vsm_check_report_foreign(r)),
                               int(lib.vsm_check_report_remaining(r)), tuple(orphans))
        finally:
            lib.vsm_check_report_free(r)


if TYPE_CHECKING:
    from .container import BackupStats, BundleStats, Container, DeviceSpec  # noqa: F401
    from .group import Group  # noqa: F401
    from .image import Image  # noqa: F401
    from .placement import Placement, Reservation  # noqa: F401
    from .workflow import Run, Workflow  # noqa: F401
