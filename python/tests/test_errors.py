"""One exception class per VSM_E* code: the table, and real failing calls."""

from __future__ import annotations

import re

import pytest

import vsm
from vsm import _constants as K
from vsm._ffi import call, cstr, ffi, lib
from conftest import MiB, Site

CODES = {
    "VSM_EINVAL": (1, vsm.InvalidArgumentError), "VSM_ENOMEM": (2, vsm.NoMemoryError),
    "VSM_ENOTFOUND": (3, vsm.NotFoundError), "VSM_EEXISTS": (4, vsm.ExistsError),
    "VSM_EBUSY": (5, vsm.BusyError), "VSM_ENOSPC": (6, vsm.NoSpaceError),
    "VSM_EIO": (7, vsm.StorageIOError), "VSM_ECORRUPT": (8, vsm.CorruptError),
    "VSM_ENOTSUP": (9, vsm.NotSupportedError), "VSM_EVERSION": (10, vsm.VersionError),
    "VSM_ESTATE": (11, vsm.StateError), "VSM_EMISMATCH": (12, vsm.MismatchError),
    "VSM_ELEASE": (13, vsm.LeaseError), "VSM_ESTALE": (14, vsm.StaleError),
    "VSM_EPERM": (15, vsm.PermissionDeniedError), "VSM_EINTERNAL": (16, vsm.InternalError),
    "VSM_ECANCELED": (17, vsm.CanceledError), "VSM_ETIMEDOUT": (18, vsm.TimedOutError),
}


def test_mapping_covers_every_code() -> None:
    # Every enumerator of vsm_error_code but VSM_OK has its own class.
    enum = ffi.typeof("vsm_error_code").relements
    assert set(enum) == set(CODES) | {"VSM_OK"}
    classes = set()
    for name, (code, cls) in CODES.items():
        assert enum[name] == code
        assert vsm.ERRORS[code] is cls
        assert issubclass(cls, vsm.Error) and cls.code == code
        e = vsm.error_for(code, "datastore 'x': boom")
        assert type(e) is cls and e.code == code and e.message == "datastore 'x': boom"
        assert str(e) == "datastore 'x': boom"
        # Without a message, the library's static description.
        assert vsm.error_for(code).message == vsm.strerror(code) == vsm.strerror(-code)
        classes.add(cls)
    assert len(classes) == len(CODES) == len(vsm.ERRORS)
    assert type(vsm.error_for(99, "?")) is vsm.Error and vsm.error_for(99).code == 99
    assert issubclass(vsm.NotFoundError, LookupError)
    assert issubclass(vsm.InvalidArgumentError, ValueError)
    assert not issubclass(vsm.ClosedError, tuple(vsm.ERRORS.values()))


def raises(cls: type, pattern: str = "") -> "pytest.RaisesContext[vsm.Error]":
    return pytest.raises(cls, match=pattern)


def check(excinfo: "pytest.ExceptionInfo[vsm.Error]", cls: type) -> None:
    e = excinfo.value
    assert type(e) is cls and e.code == cls.code and e.message


def test_einval(ctx: vsm.Context) -> None:
    with raises(vsm.InvalidArgumentError, "bad/name|name") as ei:
        ctx.add_host("bad/name")
    check(ei, vsm.InvalidArgumentError)


def test_enotfound(ctx: vsm.Context) -> None:
    with raises(vsm.NotFoundError, "nope") as ei:
        ctx.container("nope", "ds1")
    check(ei, vsm.NotFoundError)
    with raises(vsm.NotFoundError):
        ctx.datastore("nope")
    with raises(vsm.NotFoundError):
        ctx.host("nope")


def test_eexists(ctx: vsm.Context) -> None:
    ctx.create_container("ds1", "web", [("root", MiB)])
    with raises(vsm.ExistsError, "datastore 'ds1': container 'web' already exists") as ei:
        ctx.create_container("ds1", "web", [("root", MiB)])
    check(ei, vsm.ExistsError)


def test_ebusy(ctx: vsm.Context) -> None:
    c = ctx.create_container("ds1", "web", [("root", MiB)])
    c.attach("host1")
    with raises(vsm.BusyError) as ei:
        c.destroy()
    check(ei, vsm.BusyError)
    c.destroy(force=True)


def test_enospc(ctx: vsm.Context) -> None:
    with raises(vsm.NoSpaceError) as ei:
        ctx.create_container("ds1", "huge", [("root", 1 << 50)])
    check(ei, vsm.NoSpaceError)
    assert list(ctx.containers()) == []  # nothing left behind


def test_ecorrupt(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
    b = site.tmp / "web.bundle"
    c.export(b)
    data = b.read_bytes()
    bad = site.tmp / "bad.bundle"
    bad.write_bytes(data[: len(data) // 2])
    with raises(vsm.CorruptError) as ei:
        site.ctx.import_bundle(bad, "ds1", "copy")
    check(ei, vsm.CorruptError)
    assert [x.name for x in site.ctx.containers()] == ["web"]


def test_enotsup(ctx: vsm.Context) -> None:
    with raises(vsm.NotSupportedError, "nosuch") as ei:
        ctx.add_datastore("ds9", "nosuch://somewhere")
    check(ei, vsm.NotSupportedError)
    assert not ctx.has_backend("nosuch://x") and ctx.has_backend("file:///x")


def test_eversion(ctx: vsm.Context) -> None:
    # The binding always sets current versions; the raw call shows the class.
    opts = ffi.new("vsm_host_opts *")
    opts.version = K.VSM_HOST_OPTS_VERSION + 99
    with raises(vsm.VersionError) as ei:
        call(lib.vsm_host_add, ctx._ptr(), cstr("h9"), opts)
    check(ei, vsm.VersionError)


def test_estate(ctx: vsm.Context) -> None:
    c = ctx.create_container("ds1", "web", [("root", MiB)])
    with raises(vsm.StateError) as ei:
        c.deploy("root")  # not attached
    check(ei, vsm.StateError)


def test_elease_and_estale(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", MiB)])
    c.attach("host1")
    with vsm.Context(state_dir=site.tmp / "b") as b:
        b.add_datastore("ds1", site.ds_uri)
        b.add_host("host2")
        b.link("host2", "ds1")
        cb = b.container("web")
        with raises(vsm.LeaseError, "host1") as ei:
            cb.attach("host2")  # host1's heartbeat is moving
        check(ei, vsm.LeaseError)
        with raises(vsm.StaleError, "does not act for") as ei2:
            cb.deploy("root")
        check(ei2, vsm.StaleError)


def test_eperm(site: Site) -> None:
    path = site.tmp / "a.qcow2"
    vsm.image.create(path, MiB)
    with vsm.Image.open(path, readonly=True) as img:
        with raises(vsm.PermissionDeniedError) as ei:
            img.add_bitmap("b0")
        check(ei, vsm.PermissionDeniedError)


def test_ecanceled(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", MiB)])
    with raises(vsm.CanceledError, "cancel") as ei:
        c.export(site.tmp / "x.bundle", progress=lambda done, total: True)
    check(ei, vsm.CanceledError)


def test_error_is_the_calling_threads(ctx: vsm.Context) -> None:
    # The message comes from the failing call, not from a later one.
    with raises(vsm.NotFoundError, re.escape("'missing'")):
        ctx.host("missing")
    ctx.host("host1")
