"""vsm.Container: the storage of one VM instance, its devices, locators,
checkpoints, bundles, backups and migration."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, List, Optional, Tuple, Union

from . import _constants as K
from ._ffi import call, cstr, ffi, lib, pystr
from ._handle import Callbacks, ProgressFn, _Handle, _Owner
from .errors import Error, InvalidArgumentError

if TYPE_CHECKING:
    from .context import Context
    from .image import Image
    from .placement import Placement

FORMAT_RAW = 0
FORMAT_QCOW2 = 1
_FORMATS = {"raw": FORMAT_RAW, "qcow2": FORMAT_QCOW2}

StateSource = Union[bytes, bytearray, memoryview, BinaryIO]


@dataclass(frozen=True)
class DeviceSpec:
    """One device to create: name, virtual size in bytes, "raw" or
    "qcow2", and optionally a golden image on the same datastore to be a
    linked clone of (base)."""
    name: str
    size: int = 0
    format: str = "raw"
    base: Optional[str] = None

    @classmethod
    def of(cls, d: Union["DeviceSpec", Tuple[Any, ...]]) -> "DeviceSpec":
        """Accept a DeviceSpec or a (name, size[, format[, base]]) tuple."""
        return d if isinstance(d, DeviceSpec) else cls(*d)


def _format_num(fmt: Union[str, int]) -> int:
    if isinstance(fmt, int):
        return fmt
    try:
        return _FORMATS[fmt]
    except KeyError:
        raise InvalidArgumentError("unknown device format %r (raw or qcow2)" % fmt, 1) from None


def _fileno(f: Any) -> Optional[int]:
    try:
        return int(f.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


def _spec_struct(d: DeviceSpec, keep: List[Any]) -> Any:
    s = ffi.new("vsm_device_spec *")
    keep.append(s)
    s.version = K.VSM_DEVICE_SPEC_VERSION
    name = cstr(d.name)
    base = cstr(d.base)
    keep += [name, base]
    s.name = name
    s.size = d.size
    s.format = _format_num(d.format)
    s.base = base
    return s


@dataclass(frozen=True)
class Locator:
    """Where a hypervisor finds a deployed device."""
    uri: str
    path: Optional[str]
    disk_xml: str
    host: str

    @classmethod
    def _of(cls, p: Any) -> "Locator":
        return cls(pystr(lib.vsm_locator_uri(p)) or "", pystr(lib.vsm_locator_path(p)),
                   pystr(lib.vsm_locator_disk_xml(p)) or "", pystr(lib.vsm_locator_host(p)) or "")


@dataclass(frozen=True)
class Layer:
    """One frozen layer of a checkpoint."""
    device: str
    key: str
    cid: Optional[str]
    size: int


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint of a container (a snapshot of its description)."""
    name: str
    parent: Optional[str]
    ctime: int
    state_size: int
    is_current: bool
    layers: Tuple[Layer, ...]

    @classmethod
    def _of(cls, p: Any) -> "Checkpoint":
        n = lib.vsm_checkpoint_layer_count(p)
        layers = tuple(Layer(pystr(lib.vsm_checkpoint_layer_device(p, i)) or "",
                             pystr(lib.vsm_checkpoint_layer_key(p, i)) or "",
                             pystr(lib.vsm_checkpoint_layer_cid(p, i)),
                             int(lib.vsm_checkpoint_layer_size(p, i))) for i in range(n))
        return cls(pystr(lib.vsm_checkpoint_name(p)) or "", pystr(lib.vsm_checkpoint_parent(p)),
                   int(lib.vsm_checkpoint_ctime(p)), int(lib.vsm_checkpoint_state_size(p)),
                   bool(lib.vsm_checkpoint_is_current(p)), layers)


@dataclass(frozen=True)
class BundleStats:
    """What a bundle export or import moved."""
    layers: int
    layers_skipped: int
    bytes_written: int
    bundle_bytes: int

    @classmethod
    def _of(cls, s: Any) -> "BundleStats":
        return cls(int(s.layers), int(s.layers_skipped), int(s.bytes_written), int(s.bundle_bytes))


@dataclass(frozen=True)
class BackupStats:
    """What a backup or restore carried."""
    data_bytes: int
    extents: int
    file_bytes: int
    checkpoint: str

    @classmethod
    def _of(cls, s: Any) -> "BackupStats":
        return cls(int(s.data_bytes), int(s.extents), int(s.file_bytes),
                   ffi.string(s.checkpoint).decode(errors="surrogateescape"))


@dataclass(frozen=True)
class MigrateStats:
    """What a migration carried."""
    layers: int
    layers_reused: int
    bytes_written: int
    bytes_verified: int
    passes: int
    pause_us: int
    bytes_mirrored: int
    synchronous: bool

    @classmethod
    def _of(cls, s: Any) -> "MigrateStats":
        return cls(int(s.layers), int(s.layers_reused), int(s.bytes_written),
                   int(s.bytes_verified), int(s.passes), int(s.pause_us),
                   int(s.bytes_mirrored), bool(s.synchronous))


class Device:
    """A device of a container, read through the container handle: its
    properties give the state of the handle's last update."""

    def __init__(self, container: "Container", name: str) -> None:
        self.container = container
        self.name = name

    def __repr__(self) -> str:
        return "<vsm.Device %r of %r>" % (self.name, self.container.name)

    def _p(self) -> Any:
        p = lib.vsm_container_device_by_name(self.container._ptr(), cstr(self.name))
        if p == ffi.NULL:
            from .errors import NotFoundError
            raise NotFoundError("container '%s': no device '%s'" % (self.container.name, self.name), 3)
        return p

    @property
    def size(self) -> int:
        """Virtual size in bytes."""
        return int(lib.vsm_device_size(self._p()))

    @property
    def format(self) -> str:
        """"raw" or "qcow2"."""
        return pystr(lib.vsm_format_name(lib.vsm_device_format(self._p()))) or "?"

    @property
    def key(self) -> str:
        """The backend's key for the device's storage (opaque)."""
        return pystr(lib.vsm_device_key(self._p())) or ""

    @property
    def locator(self) -> Optional[Locator]:
        """The locator while deployed, else None."""
        loc = lib.vsm_device_locator(self._p())
        return None if loc == ffi.NULL else Locator._of(loc)

    def deploy(self, **kw: Any) -> Locator:
        """Container.deploy() of this device."""
        return self.container.deploy(self.name, **kw)

    def undeploy(self) -> None:
        """Container.undeploy() of this device."""
        self.container.undeploy(self.name)

    def open_image(self, *, writable: bool = False) -> "Image":
        """Open this device as a vsm.Image."""
        return self.container.open_image(self.name, writable=writable)


class Container(_Handle):
    """A container handle (a snapshot of its record that the calls on it
    update). Close it, or use it as a context manager; the Context frees
    it when it closes."""

    def __init__(self, ctx: "Context", ptr: Any, owner: _Owner) -> None:
        super().__init__(ptr, owner)
        self.context = ctx
        self._name = pystr(lib.vsm_container_name(ptr)) or ""

    @classmethod
    def _own(cls, ctx: "Context", ptr: Any) -> "Container":
        return cls(ctx, ptr, _Owner(ctx, "container", lib.vsm_container_free, ptr))

    def _describe(self) -> str:
        return "vsm.Container %r" % self._name

    def __repr__(self) -> str:
        return "<vsm.Container %r%s>" % (self._name, " closed" if self.closed else "")

    def _call(self, fn: Any, *args: Any) -> int:
        with self._lock:
            return call(fn, *args)

    # -- properties
    @property
    def name(self) -> str:
        """Container name."""
        return pystr(lib.vsm_container_name(self._ptr())) or ""

    @property
    def uuid(self) -> str:
        """UUID in canonical text form."""
        return pystr(lib.vsm_container_uuid(self._ptr())) or ""

    @property
    def datastore(self) -> str:
        """Name of the datastore holding it."""
        return pystr(lib.vsm_container_datastore(self._ptr())) or ""

    @property
    def attached_host(self) -> Optional[str]:
        """Host it is attached to, or None."""
        return pystr(lib.vsm_container_attached_host(self._ptr()))

    @property
    def state_size(self) -> int:
        """Size of the VM-state area in bytes."""
        return int(lib.vsm_container_state_size(self._ptr()))

    @property
    def ctime(self) -> int:
        """Creation time, seconds since the epoch."""
        return int(lib.vsm_container_ctime(self._ptr()))

    @property
    def devices(self) -> List[Device]:
        """The devices, in creation order."""
        p = self._ptr()
        return [Device(self, pystr(lib.vsm_device_name(lib.vsm_container_device(p, i))) or "")
                for i in range(lib.vsm_container_device_count(p))]

    def device(self, name: str) -> Device:
        """Device @name; NotFoundError if the container has none."""
        d = Device(self, name)
        d._p()
        return d

    def refresh(self) -> None:
        """Re-read the record from the datastore."""
        self._call(lib.vsm_container_refresh, self._ptr())

    # -- lifecycle
    def destroy(self, *, force: bool = False) -> None:
        """Delete the container, its devices and record (force: detach and
        undeploy first). The object stays readable until closed."""
        self._call(lib.vsm_container_destroy, self._ptr(),
                   K.VSM_CONTAINER_DESTROY_FORCE if force else 0)

    def attach(self, host: str, *, takeover: bool = False) -> None:
        """Attach to @host (which must be linked to the datastore)."""
        self._call(lib.vsm_attach, self._ptr(), cstr(host), K.VSM_ATTACH_TAKEOVER if takeover else 0)

    def detach(self, *, force: bool = False) -> None:
        """Detach from the host (force: undeploy deployed devices first)."""
        self._call(lib.vsm_detach, self._ptr(), K.VSM_DETACH_FORCE if force else 0)

    def deploy(self, device: str, *, domain: Optional[str] = None, target: Optional[str] = None,
               bus: Optional[str] = None) -> Locator:
        """Deploy @device for the hypervisor of the container's host and
        return its locator."""
        opts = ffi.new("vsm_deploy_opts *")
        opts.version = K.VSM_DEPLOY_OPTS_VERSION
        keep = [cstr(domain), cstr(target), cstr(bus)]
        opts.domain, opts.target, opts.bus = keep
        out = ffi.new("vsm_locator **")
        self._call(lib.vsm_device_deploy, out, self._ptr(), cstr(device), opts)
        try:
            return Locator._of(out[0])
        finally:
            lib.vsm_locator_free(out[0])

    def undeploy(self, device: str) -> None:
        """Undo deploy()."""
        self._call(lib.vsm_device_undeploy, self._ptr(), cstr(device), 0)

    def add_device(self, spec: Union[DeviceSpec, Tuple[Any, ...]], *, thin: bool = False) -> Device:
        """Add a device (undeployed) and return it."""
        spec = DeviceSpec.of(spec)
        keep: List[Any] = []
        s = _spec_struct(spec, keep)
        self._call(lib.vsm_device_add, self._ptr(), s, K.VSM_DEVICE_ADD_THIN if thin else 0)
        return Device(self, spec.name)

    def remove_device(self, name: str) -> None:
        """Remove device @name and delete its storage."""
        self._call(lib.vsm_device_remove, self._ptr(), cstr(name), 0)

    def resize_device(self, name: str, size: int) -> None:
        """Grow device @name to @size bytes."""
        self._call(lib.vsm_device_resize, self._ptr(), cstr(name), size, 0)

    def open_image(self, device: str, *, writable: bool = False) -> "Image":
        """Open @device as a vsm.Image (read-only unless writable)."""
        return self.context.open_device_image(self.datastore, self.name, device, writable=writable)

    # -- checkpoints
    def create_checkpoint(self, name: str, *, state: Optional[StateSource] = None,
                          stopped: bool = False) -> Checkpoint:
        """Checkpoint every device, with an optional VM-state blob: bytes,
        or a binary file object read from its current offset to its end
        (one with a file descriptor, a pipe too, is read by the library
        itself)."""
        cbs = Callbacks()
        opts = ffi.new("vsm_checkpoint_opts *")
        opts.version = K.VSM_CHECKPOINT_OPTS_VERSION
        opts.state_fd = -1
        if isinstance(state, (bytes, bytearray, memoryview)):
            opts.state_read = cbs.state_reader(state)
            opts.state_size = len(state)
        elif state is not None:
            fd = _fileno(state)
            if fd is not None:
                opts.state_fd = fd  # read to its end by the library
            else:
                opts.state_read = cbs.state_reader(state)
        opts.flags = K.VSM_CHECKPOINT_STOPPED if stopped else 0
        out = ffi.new("vsm_checkpoint **")
        try:
            self._call(lib.vsm_checkpoint_create, out, self._ptr(), cstr(name), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        try:
            return Checkpoint._of(out[0])
        finally:
            lib.vsm_checkpoint_free(out[0])

    def checkpoints(self) -> Iterator[Checkpoint]:
        """The checkpoints, oldest first."""
        out = ffi.new("vsm_checkpoint ***")
        n = ffi.new("size_t *")
        self._call(lib.vsm_checkpoint_list, out, n, self._ptr())
        try:
            items = [Checkpoint._of(out[0][i]) for i in range(n[0])]
        finally:
            lib.vsm_checkpoint_list_free(out[0], n[0])
        return iter(items)

    def checkpoint(self, name: str) -> Checkpoint:
        """Checkpoint @name; NotFoundError if none."""
        out = ffi.new("vsm_checkpoint **")
        self._call(lib.vsm_checkpoint_lookup, out, self._ptr(), cstr(name))
        try:
            return Checkpoint._of(out[0])
        finally:
            lib.vsm_checkpoint_free(out[0])

    def checkpoint_state(self, name: str) -> bytes:
        """The VM-state blob of checkpoint @name (checksum verified)."""
        cbs = Callbacks()
        sink = io.BytesIO()
        try:
            self._call(lib.vsm_checkpoint_state_read, self._ptr(), cstr(name), -1,
                       cbs.state_writer(sink), ffi.NULL)
        except Error as e:
            cbs.reraise(e)
            raise
        return sink.getvalue()

    def revert(self, name: str, *, stopped: bool = False, want_state: bool = False) -> Optional[bytes]:
        """Revert every device to checkpoint @name; with want_state, return
        the checkpoint's VM-state blob."""
        cbs = Callbacks()
        sink = io.BytesIO()
        opts = ffi.new("vsm_revert_opts *")
        opts.version = K.VSM_REVERT_OPTS_VERSION
        opts.state_fd = -1
        if want_state:
            opts.state_write = cbs.state_writer(sink)
        opts.flags = K.VSM_CHECKPOINT_STOPPED if stopped else 0
        try:
            self._call(lib.vsm_checkpoint_revert, self._ptr(), cstr(name), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        return sink.getvalue() if want_state else None

    def delete_checkpoint(self, name: str, *, stopped: bool = False) -> None:
        """Delete checkpoint @name (its layers merge into their child)."""
        self._call(lib.vsm_checkpoint_delete, self._ptr(), cstr(name),
                   K.VSM_CHECKPOINT_STOPPED if stopped else 0)

    def clone(self, checkpoint: str, name: str, *, full: bool = False) -> "Container":
        """Make container @name from @checkpoint: linked, or a full copy."""
        out = ffi.new("vsm_container **")
        self._call(lib.vsm_checkpoint_clone, out, self._ptr(), cstr(checkpoint), cstr(name),
                   K.VSM_CLONE_FULL if full else 0)
        return Container._own(self.context, out[0])

    # -- moving data
    def export(self, path: Union[str, "os.PathLike[str]"], *, checkpoint: Optional[str] = None,
               progress: Optional[ProgressFn] = None) -> BundleStats:
        """Write the container (or one checkpoint) to a new bundle file.
        A true return from progress(done, total) cancels: CanceledError,
        and no file is left."""
        cbs = Callbacks()
        stats = ffi.new("vsm_bundle_stats *")
        opts = ffi.new("vsm_bundle_opts *")
        opts.version = K.VSM_BUNDLE_OPTS_VERSION
        opts.progress = cbs.progress(progress, -17)
        opts.stats = stats
        try:
            self._call(lib.vsm_bundle_export, self._ptr(), cstr(checkpoint),
                       cstr(os.fspath(path)), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        return BundleStats._of(stats)

    def backup(self, path: Union[str, "os.PathLike[str]"], *, incremental_from: Optional[str] = None,
               checkpoint: Optional[str] = None, progress: Optional[ProgressFn] = None) -> BackupStats:
        """Take a checkpoint and write the container (full, or what changed
        since @incremental_from) to a backup file."""
        cbs = Callbacks()
        stats = ffi.new("vsm_backup_stats *")
        opts = ffi.new("vsm_backup_opts *")
        opts.version = K.VSM_BACKUP_OPTS_VERSION
        keep = [cstr(incremental_from), cstr(checkpoint)]
        opts.incremental_from, opts.checkpoint = keep
        opts.progress = cbs.progress(progress, -17)
        opts.stats = stats
        try:
            self._call(lib.vsm_backup, self._ptr(), cstr(os.fspath(path)), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        return BackupStats._of(stats)

    def changes(self, device: str, since: str, until: Optional[str] = None) -> List[Tuple[int, int]]:
        """(offset, length) extents of @device written between checkpoint
        @since and @until (None: now)."""
        out = ffi.new("vsm_change_extent **")
        n = ffi.new("size_t *")
        self._call(lib.vsm_changes, out, n, self._ptr(), cstr(device), cstr(since), cstr(until))
        try:
            return [(int(out[0][i].offset), int(out[0][i].length)) for i in range(n[0])]
        finally:
            lib.vsm_change_extents_free(out[0])

    def migrate(self, datastore: str, *, live: bool = False, progress: Optional[ProgressFn] = None,
                downtime_ms: int = 0, deadline_ms: int = 0, max_passes: int = 0,
                abort_if_no_converge: bool = False) -> MigrateStats:
        """Move the container to @datastore (offline, or live)."""
        cbs = Callbacks()
        stats = ffi.new("vsm_migrate_stats *")
        opts = ffi.new("vsm_migrate_opts *")
        opts.version = K.VSM_MIGRATE_OPTS_VERSION
        opts.flags = K.VSM_MIGRATE_LIVE if live else 0
        opts.progress = cbs.progress(progress, -17)
        opts.stats = stats
        opts.downtime_ms = downtime_ms
        opts.deadline_ms = deadline_ms
        opts.max_passes = max_passes
        opts.on_no_converge = 1 if abort_if_no_converge else 0
        try:
            self._call(lib.vsm_container_migrate, self._ptr(), cstr(datastore), opts)
        except Error as e:
            cbs.reraise(e)
            raise
        return MigrateStats._of(stats)

    # -- placement
    def place_host(self, **kw: Any) -> "Placement":
        """Phase 2: rank the hosts for this container (keywords: tags,
        anti_affinity, weigher, migrate, watch, filters, weighers)."""
        from .placement import Placement, host_request, run_placement
        keep: List[Any] = []
        cbs = Callbacks()
        req = host_request(keep, cbs, **kw)
        out = ffi.new("vsm_placement **")
        with self._lock:
            run_placement(cbs, lib.vsm_place_host, out, self._ptr(), req)
        return Placement._take(out[0])
