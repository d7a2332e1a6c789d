"""The whole flow through the binding, listings, and handle lifetimes."""

from __future__ import annotations

import os
import pathlib
import re

import pytest

import vsm
from conftest import MiB, Site


def test_whole_flow(site: Site) -> None:
    ctx = site.ctx
    assert vsm.library_version() >= (0, 1, 0)
    assert ctx.state_dir == str(site.tmp / "st")
    total, free = site.ds.capacity()
    assert total >= free > 0
    assert site.ds.uuid and len(site.ds.uuid) == 36
    assert ctx.host("host1").datastores == ("ds1",)
    with ctx.create_container("ds1", "web", [vsm.DeviceSpec("root", 4 * MiB),
                                             vsm.DeviceSpec("data", 2 * MiB, "qcow2")],
                              state_size=MiB) as c:
        assert c.name == "web" and c.datastore == "ds1" and c.attached_host is None
        assert re.fullmatch(r"[0-9a-f-]{36}", c.uuid)
        assert c.state_size == MiB and c.ctime > 0
        assert [(d.name, d.size, d.format) for d in c.devices] == \
            [("root", 4 * MiB, "raw"), ("data", 2 * MiB, "qcow2")]
        c.attach("host1")
        assert c.attached_host == "host1"
        loc = c.deploy("root")
        assert loc.host == "host1"
        assert loc.path and os.path.exists(loc.path)
        assert loc.uri == "file://" + loc.path
        assert "<disk" in loc.disk_xml and loc.path in loc.disk_xml
        assert c.device("root").locator == loc
        assert c.device("data").locator is None
        loc2 = c.device("data").deploy(target="vdc", bus="scsi")
        assert "dev='vdc'" in loc2.disk_xml and "bus='scsi'" in loc2.disk_xml
        # A second context (another host's view) sees it.
        with vsm.Context(state_dir=site.tmp / "other") as other:
            other.add_datastore("ds1", site.ds_uri)
            seen = other.container("web", "ds1")
            assert seen.uuid == c.uuid and seen.attached_host == "host1"
            assert other.container_by_uuid(c.uuid).name == "web"
        c.undeploy("root")
        c.device("data").undeploy()
        assert c.device("root").locator is None
        c.detach()
        assert c.attached_host is None
        c.destroy()
        assert not os.path.exists(loc.path)
        with pytest.raises(vsm.NotFoundError):
            ctx.container("web")
    assert c.closed
    with pytest.raises(vsm.ClosedError):
        c.name


def test_listings_are_iterators(site: Site) -> None:
    ctx = site.ctx
    for n in ("c", "a", "b"):
        ctx.create_container("ds1", n, [("root", MiB)]).close()
    ctx.add_datastore("ds2", "file://" + str(site.tmp / "ds2"), create=True)
    ctx.create_container("ds2", "z", [("root", MiB)])
    ctx.add_host("host2", hypervisor_uri="qemu:///session")
    it = ctx.containers()
    assert iter(it) is it
    assert [(c.datastore, c.name) for c in it] == [("ds1", "a"), ("ds1", "b"), ("ds1", "c"), ("ds2", "z")]
    assert [c.name for c in ctx.containers("ds2")] == ["z"]
    assert [c.name for c in site.ds.containers()] == ["a", "b", "c"]
    assert [d.name for d in ctx.datastores()] == ["ds1", "ds2"]
    hosts = list(ctx.hosts())
    assert [h.name for h in hosts] == ["host1", "host2"]
    assert hosts[1].hypervisor_uri == "qemu:///session" and hosts[1].datastores == ()
    leases = list(site.ds.leases())
    assert [lease.container for lease in leases] == ["a", "b", "c"]
    assert all(lease.state_name == "free" and lease.host is None for lease in leases)


def test_list_handles_outlive_the_listing(site: Site) -> None:
    ctx = site.ctx
    ctx.create_container("ds1", "a", [("root", MiB)])
    ctx.create_container("ds1", "b", [("root", MiB)])
    a, b = list(ctx.containers())
    del a
    b.attach("host1")  # its list's other handle is gone; this one stays valid
    assert b.attached_host == "host1"
    b.close()
    b.close()
    with pytest.raises(vsm.ClosedError):
        b.attach("host1")


def test_devices_of_an_existing_container(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
    d = c.add_device(("extra", MiB, "qcow2"))
    assert d.size == MiB and [x.name for x in c.devices] == ["root", "extra"]
    c.resize_device("extra", 2 * MiB)
    assert d.size == 2 * MiB
    c.remove_device("extra")
    with pytest.raises(vsm.NotFoundError):
        d.size
    with pytest.raises(vsm.StateError):
        c.remove_device("root")


def test_context_closed_while_objects_live(tmp_path: pathlib.Path) -> None:
    s = Site(tmp_path)
    c = s.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
    listed = list(s.ctx.containers())
    img = c.open_image("root")
    s.ctx.close()
    s.ctx.close()
    for fn in (lambda: c.name, lambda: c.attach("host1"), lambda: listed[0].uuid,
               lambda: img.read(512), lambda: s.ds.capacity(), lambda: s.ctx.datastore("ds1"),
               lambda: c.device("root")):
        with pytest.raises(vsm.ClosedError):
            fn()
    img.close()
    c.close()
    assert "closed" in repr(s.ctx)


def test_datastore_and_host_removal(site: Site) -> None:
    ctx = site.ctx
    c = ctx.create_container("ds1", "web", [("root", MiB)])
    c.attach("host1")
    with pytest.raises(vsm.BusyError):
        ctx.remove_host("host1")
    with pytest.raises(vsm.BusyError):
        site.ds.remove()
    c.detach()
    ctx.unlink("host1", "ds1")
    ctx.remove_host("host1")
    site.ds.remove()
    assert list(ctx.datastores()) == []
    assert os.path.isdir(site.ds_dir)  # nothing on it was deleted


def test_orphan_check(site: Site) -> None:
    site.ctx.create_container("ds1", "web", [("root", MiB)])
    (site.ds_dir / "stray.raw").write_bytes(b"\0" * 4096)
    report = site.ctx.check_datastore("ds1", grace_seconds=0)
    assert report.datastore == "ds1" and report.referenced >= 1
    report = site.ctx.check_datastore("ds1", repair=True, grace_seconds=0)
    assert report.remaining == 0


def test_readme_flow(tmp_path: pathlib.Path) -> None:
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    code = re.search(r"```python\n(.*?)```", readme.read_text(), re.S)
    assert code, "README.md has a python example"
    os.environ["VSM_EXAMPLE_DIR"] = str(tmp_path)
    try:
        exec(compile(code.group(1), "README.md", "exec"), {})
    finally:
        del os.environ["VSM_EXAMPLE_DIR"]


def test_dropped_without_close(tmp_path: pathlib.Path) -> None:
    import gc
    for i in range(3):
        s = Site(tmp_path / str(i))
        c = s.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
        img = c.open_image("root")
        c.me = c  # a cycle through the handle  # type: ignore[attr-defined]
        del s, c, img
        gc.collect()
    # The frees queued by the collector run at the next call.
    with vsm.Context(state_dir=tmp_path / "after") as ctx:
        assert list(ctx.datastores()) == []
    with vsm.Context(state_dir=tmp_path / "0" / "st") as ctx:
        assert [c.name for c in ctx.containers()] == ["web"]
