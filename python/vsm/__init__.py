"""vsm: Python binding of libvsm, the virtual storage manager for VMs.

    import vsm
    with vsm.Context(state_dir="/tmp/st") as ctx:
        ctx.add_datastore("ds1", "file:///tmp/ds1", create=True)
        ctx.add_host("host1")
        ctx.link("host1", "ds1")
        with ctx.create_container("ds1", "web", [vsm.DeviceSpec("root", 1 << 30)]) as c:
            c.attach("host1")
            print(c.deploy("root").path)

Built on the installed libvsm.so.0 through cffi (ABI mode; $VSM_LIBRARY
names another library file). Every call releases the GIL. A failing call
raises the vsm.Error subclass of its VSM_E* code (vsm.errors.ERRORS).
"""

from __future__ import annotations

from typing import Tuple

from . import image
from ._constants import *  # noqa: F401,F403  (VSM_* flags and versions)
from ._ffi import ffi, lib
from ._handle import ProgressFn
from .container import (BackupStats, BundleStats, Checkpoint, Container, Device, DeviceSpec,
                        Layer, Locator, MigrateStats)
from .context import (EVENT_DATASTORE_CHANGED, EVENT_DATASTORE_LOST, EVENT_LEASE_LOST,
                      EVENT_MIGRATION, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_WARN, CheckReport,
                      Context, Datastore, Event, Host, Lease, Orphan)
from .errors import (ERRORS, BusyError, CanceledError, ClosedError, CorruptError, Error,
                     ExistsError, InternalError, InvalidArgumentError, LeaseError,
                     MismatchError, NoMemoryError, NoSpaceError, NotFoundError,
                     NotSupportedError, PermissionDeniedError, StaleError, StateError,
                     StorageIOError, TimedOutError, VersionError, error_for, strerror)
from .group import Group, GroupCheckpoint, GroupImage, Member, PlanEntry
from .image import Image
from .placement import (Candidate, DatastoreInfo, Filter, HostInfo, Placement, Reservation,
                        Weigher)
from .workflow import Param, Run, RunStep, Workflow

__version__ = "0.1.0"


def library_version() -> Tuple[int, int, int]:
    """(major, minor, patch) of the libvsm actually loaded."""
    v = ffi.new("int[3]")
    lib.vsm_version(v, v + 1, v + 2)
    return int(v[0]), int(v[1]), int(v[2])


__all__ = [
    "BackupStats", "DatastoreInfo", "Filter", "HostInfo", "Weigher", "GroupImage", "PlanEntry", "Param", "Run", "RunStep", "Workflow", "Candidate", "Group", "GroupCheckpoint", "Member", "Placement", "Reservation", "BundleStats", "BusyError", "CanceledError", "CheckReport",
    "Checkpoint", "ClosedError", "Container", "Context", "CorruptError", "Datastore", "Device",
    "DeviceSpec", "ERRORS", "Error", "Event", "ExistsError", "Host", "Image", "InternalError",
    "InvalidArgumentError", "Layer", "Lease", "LeaseError", "Locator", "MigrateStats",
    "MismatchError", "NoMemoryError", "NoSpaceError", "NotFoundError", "NotSupportedError",
    "Orphan", "PermissionDeniedError", "ProgressFn", "StaleError", "StateError",
    "StorageIOError", "TimedOutError", "VersionError", "error_for", "image", "library_version",
    "strerror", "EVENT_DATASTORE_CHANGED", "EVENT_DATASTORE_LOST", "EVENT_LEASE_LOST",
    "EVENT_MIGRATION", "LOG_DEBUG", "LOG_ERROR", "LOG_INFO", "LOG_WARN"
]
