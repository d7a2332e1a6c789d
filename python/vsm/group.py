"""vsm.Group: consistency groups (doc/groups.md): checkpoints taken at one
crash-consistent cut across containers and datastores."""

from __future__ import annotations

from dataclasses import dataclass
import os
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from . import _constants as K
from ._ffi import RANK_IMAGE, call, cstr, ffi, lib, pystr
from ._handle import Callbacks, ProgressFn, _Handle, _Owner
from .errors import Error

if TYPE_CHECKING:
    from .container import Container
    from .context import Context


@dataclass(frozen=True)
class Member:
    """A member container of a group."""
    name: str
    uuid: str
    datastore: str


@dataclass(frozen=True)
class GroupCheckpoint:
    """A group checkpoint: the member checkpoint of each member, by UUID."""
    name: str
    ctime: int
    members: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class PlanEntry:
    """The recovery plan of one member: boot priority (lower boots
    first), members that must be up before it, network settings."""
    member: str
    priority: int = 0
    after: Tuple[str, ...] = ()
    mac: Optional[str] = None
    network: Optional[str] = None
    ip: Optional[str] = None
    prefix: int = -1
    gateway: Optional[str] = None
    dns: Optional[str] = None


class Group(_Handle):
    """A consistency group handle (a snapshot its calls update)."""

    def __init__(self, ctx: "Context", ptr: Any, owner: _Owner) -> None:
        super().__init__(ptr, owner)
        self.context = ctx

    @classmethod
    def _own(cls, ctx: "Context", ptr: Any) -> "Group":
        return cls(ctx, ptr, _Owner(ctx, "group", lib.vsm_group_free, ptr))

    def _describe(self) -> str:
        return "vsm.Group"

    def __repr__(self) -> str:
        return "<vsm.Group%s>" % (" closed" if self.closed else " %r" % self.name)

    def _call(self, fn: Any, *args: Any) -> int:
        with self._lock:
            return call(fn, self._ptr(), *args)

    @property
    def name(self) -> str:
        """Group name."""
        return pystr(lib.vsm_group_name(self._ptr())) or ""

    @property
    def uuid(self) -> str:
        """Group UUID."""
        return pystr(lib.vsm_group_uuid(self._ptr())) or ""

    @property
    def datastore(self) -> str:
        """Datastore keeping the group record."""
        return pystr(lib.vsm_group_datastore(self._ptr())) or ""

    @property
    def ctime(self) -> int:
        """Creation time, seconds since the epoch."""
        return int(lib.vsm_group_ctime(self._ptr()))

    @property
    def members(self) -> List[Member]:
        """The member containers."""
        p = self._ptr()
        return [Member(pystr(lib.vsm_group_member_name(p, i)) or "",
                       pystr(lib.vsm_group_member_uuid(p, i)) or "",
                       pystr(lib.vsm_group_member_datastore(p, i)) or "")
                for i in range(lib.vsm_group_member_count(p))]

    @property
    def checkpoints(self) -> List[GroupCheckpoint]:
        """The group checkpoints."""
        p = self._ptr()
        out = []
        for i in range(lib.vsm_group_checkpoint_count(p)):
            mem = tuple((pystr(lib.vsm_group_checkpoint_member_uuid(p, i, j)) or "",
                         pystr(lib.vsm_group_checkpoint_member_checkpoint(p, i, j)) or "")
                        for j in range(lib.vsm_group_checkpoint_member_count(p, i)))
            out.append(GroupCheckpoint(pystr(lib.vsm_group_checkpoint_name(p, i)) or "",
                                       int(lib.vsm_group_checkpoint_ctime(p, i)), mem))
        return out

    def refresh(self) -> None:
        """Re-read the group record."""
        self._call(lib.vsm_group_refresh)

    def destroy(self) -> None:
        """Destroy the group record (members and their checkpoints stay)."""
        self._call(lib.vsm_group_destroy, 0)

    def add(self, member: "Container") -> None:
        """Add a container to the group."""
        self._call(lib.vsm_group_member_add, member._ptr(), 0)

    def remove(self, name: str) -> None:
        """Remove member @name from the group."""
        self._call(lib.vsm_group_member_remove, cstr(name), 0)

    def checkpoint(self, name: str, *, timeout_ms: int = 0, freeze: bool = False) -> None:
        """Checkpoint every member at one crash-consistent cut."""
        opts = ffi.new("vsm_group_checkpoint_opts *")
        opts.version = K.VSM_GROUP_CHECKPOINT_OPTS_VERSION
        opts.timeout_ms = timeout_ms
        opts.flags = K.VSM_GROUP_CHECKPOINT_FREEZE if freeze else 0
        self._call(lib.vsm_group_checkpoint_create, cstr(name), opts)

    def revert(self, name: str) -> None:
        """Revert every member to group checkpoint @name."""
        self._call(lib.vsm_group_checkpoint_revert, cstr(name), 0)

    def delete_checkpoint(self, name: str) -> None:
        """Delete group checkpoint @name."""
        self._call(lib.vsm_group_checkpoint_delete, cstr(name), 0)

    def clone(self, checkpoint: str, new_name: str) -> "Group":
        """Clone the group from @checkpoint into group @new_name."""
        out = ffi.new("vsm_group **")
        with self._lock:
            call(lib.vsm_group_clone, out, self._ptr(), cstr(checkpoint), cstr(new_name), 0)
        return Group._own(self.context, out[0])

    def backup(self, directory: Union[str, "os.PathLike[str]"], *, incremental_from: Optional[str] = None,
               checkpoint: Optional[str] = None, timeout_ms: int = 0,
               progress: Optional[ProgressFn] = None) -> None:
        """Take a group checkpoint and write the backup set into @directory
        (full, or incremental from an earlier backup's group checkpoint)."""
        cbs = Callbacks()
        opts = ffi.new("vsm_group_backup_opts *")
        opts.version = K.VSM_GROUP_BACKUP_OPTS_VERSION
        keep = [cstr(incremental_from), cstr(checkpoint)]
        opts.incremental_from, opts.checkpoint = keep
        opts.timeout_ms = timeout_ms
        opts.progress = cbs.progress(progress, -17)
        try:
            self._call(lib.vsm_group_backup, cstr(os.fspath(directory)), opts)
        except Error as e:
            cbs.reraise(e)
            raise

    def set_plan(self, entries: Sequence[PlanEntry]) -> None:
        """Set the recovery plan of the members @entries name."""
        keep: List[Any] = []
        arr = ffi.new("vsm_group_plan_entry[]", len(entries))
        for i, e in enumerate(entries):
            a = arr[i]
            a.version = K.VSM_GROUP_PLAN_ENTRY_VERSION
            strs = [cstr(e.member), cstr(e.mac), cstr(e.network), cstr(e.ip), cstr(e.gateway),
                    cstr(e.dns)]
            after = [cstr(x) for x in e.after]
            aarr = ffi.new("char *[]", after) if after else ffi.NULL
            keep += [strs, after, aarr]
            a.member, a.mac, a.network, a.ip, a.gateway, a.dns = strs
            a.priority = e.priority
            a.after = aarr
            a.n_after = len(after)
            a.prefix = e.prefix
        self._call(lib.vsm_group_plan_set, arr, len(entries), 0)

    @property
    def plan(self) -> List[PlanEntry]:
        """The recovery plan, one entry per member."""
        from .errors import NotFoundError
        out = []
        e = ffi.new("vsm_group_plan_entry *")
        with self._lock:
            p = self._ptr()
            i = 0
            while True:
                e.version = K.VSM_GROUP_PLAN_ENTRY_VERSION
                try:
                    call(lib.vsm_group_plan_get, p, i, e)
                except NotFoundError:
                    return out
                out.append(PlanEntry(pystr(e.member) or "", int(e.priority),
                                     tuple(pystr(e.after[j]) or "" for j in range(e.n_after)),
                                     pystr(e.mac), pystr(e.network), pystr(e.ip), int(e.prefix),
                                     pystr(e.gateway), pystr(e.dns)))
                i += 1

    def open_image(self, member: str, device: str) -> "GroupImage":
        """Open a member's device read-write through the group, so that a
        group checkpoint or revert holds its writes."""
        out = ffi.new("vsm_group_image **")
        with self._lock:
            call(lib.vsm_group_image_open, out, self._ptr(), cstr(member), cstr(device), 0)
        assert self._owner is not None
        return GroupImage(out[0], self, "%s:%s" % (member, device))


class GroupImage(_Handle):
    """A member's device opened through its group (read, write, flush).
    It keeps the group handle alive; close it (or use ``with``)."""

    def __init__(self, ptr: Any, group: Group, what: str) -> None:
        super().__init__(ptr, _Owner(group.context, "group image", lib.vsm_group_image_close, ptr,
                                     rank=RANK_IMAGE))
        self._group_owner = group._owner  # freed only after this image
        self._what = what

    def _describe(self) -> str:
        return "vsm.GroupImage %r" % self._what

    def read(self, length: int, offset: int = 0) -> bytes:
        """@length bytes at @offset."""
        buf = ffi.new("char[]", length)
        with self._lock:
            call(lib.vsm_group_image_read, self._ptr(), buf, length, offset)
        return ffi.buffer(buf, length)[:]

    def write(self, data: Union[bytes, bytearray, memoryview], offset: int = 0) -> None:
        """Write @data at @offset (waits while a group checkpoint holds writes)."""
        cbuf = ffi.from_buffer(data)
        with self._lock:
            call(lib.vsm_group_image_write, self._ptr(), cbuf, len(cbuf), offset)

    def flush(self) -> None:
        """Flush."""
        with self._lock:
            call(lib.vsm_group_image_flush, self._ptr())

    def close(self) -> None:
        """Close (flushing); raises the flush's error."""
        owner, self._owner = self._owner, None
        if owner is None or owner.released:
            return
        owner.released = True
        with self._lock:
            call(lib.vsm_group_image_close, self._cptr)
