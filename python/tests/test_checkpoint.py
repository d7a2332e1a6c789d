"""Checkpoints through vsm.Image on the device: write, checkpoint, write,
revert, read back; bundles and clones."""

from __future__ import annotations

import os

import pytest

import vsm
from conftest import MiB, Site

A = b"A" * 65536
B = b"B" * 65536


@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_checkpoint_round_trip(site: Site, fmt: str) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", 4 * MiB, fmt)])
    with c.open_image("root", writable=True) as img:
        img.write(A, MiB)
        img.flush()
    cp = c.create_checkpoint("cp1", state=b"memory of the VM")
    assert cp.name == "cp1" and cp.parent is None and cp.is_current
    assert cp.state_size == len(b"memory of the VM")
    assert [layer.device for layer in cp.layers] == ["root"]
    with c.open_image("root", writable=True) as img:
        assert img.read(len(A), MiB) == A
        img.write(B, MiB)
        img.write(B, 3 * MiB)
    with c.open_image("root") as img:
        assert img.read(len(B), MiB) == B
    cp2 = c.create_checkpoint("cp2")
    assert cp2.parent == "cp1" and cp2.state_size == 0
    assert [x.name for x in c.checkpoints()] == ["cp1", "cp2"]
    assert c.revert("cp1", want_state=True) == b"memory of the VM"
    with c.open_image("root") as img:
        assert img.read(len(A), MiB) == A
        assert img.read(len(B), 3 * MiB) == bytes(len(B))
    assert c.checkpoint("cp1").is_current and not c.checkpoint("cp2").is_current
    # A linked clone of cp2 reads what cp2 froze.
    with c.clone("cp2", "web2") as clone:
        assert clone.name == "web2"
        with clone.open_image("root") as img:
            assert img.read(len(B), MiB) == B
    c.delete_checkpoint("cp2")
    assert [x.name for x in c.checkpoints()] == ["cp1"]
    with pytest.raises(vsm.NotFoundError):
        c.checkpoint("cp2")
    with pytest.raises(vsm.ExistsError):
        c.create_checkpoint("cp1")


def test_checkpoint_refused_while_deployed(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
    c.attach("host1")
    c.deploy("root")
    with pytest.raises(vsm.BusyError):
        c.create_checkpoint("cp1")
    with pytest.raises(vsm.BusyError):
        c.open_image("root", writable=True)
    c.create_checkpoint("cp1", stopped=True)
    assert c.device("root").locator is not None  # deployed again


def test_state_callback_exception_is_raised(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])

    class Broken:
        def read(self, n: int) -> bytes:
            raise KeyError("from read")
    with pytest.raises(KeyError) as ei:
        c.create_checkpoint("cp1", state=Broken())
    assert isinstance(ei.value.__cause__, vsm.Error)
    assert list(c.checkpoints()) == []


def test_bundle_round_trip(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", 2 * MiB, "qcow2")])
    with c.open_image("root", writable=True) as img:
        img.write(A, 0)
    c.create_checkpoint("cp1", state=b"s")
    stats = c.export(site.tmp / "web.bundle")
    assert stats.layers >= 2 and stats.bundle_bytes == os.path.getsize(site.tmp / "web.bundle")
    site.ctx.add_datastore("ds2", "file://" + str(site.tmp / "ds2"), create=True)
    copy, istats = site.ctx.import_bundle(site.tmp / "web.bundle", "ds2", "copy")
    assert copy.datastore == "ds2" and copy.name == "copy" and istats.layers == stats.layers
    assert [x.name for x in copy.checkpoints()] == ["cp1"]
    with copy.open_image("root") as img:
        assert img.read(len(A), 0) == A


def test_migrate_offline(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", 2 * MiB, "qcow2")])
    with c.open_image("root", writable=True) as img:
        img.write(A, 0)
    site.ctx.add_datastore("ds2", "file://" + str(site.tmp / "ds2"), create=True)
    stats = c.migrate("ds2")
    assert c.datastore == "ds2" and stats.layers >= 1
    with c.open_image("root") as img:
        assert img.read(len(A), 0) == A


def test_backup_and_changes(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", 2 * MiB, "qcow2")])
    with c.open_image("root", writable=True) as img:
        img.write(A, 0)
    full = c.backup(site.tmp / "full.vbk", checkpoint="b1")
    assert full.checkpoint == "b1" and full.data_bytes >= len(A)
    with c.open_image("root", writable=True) as img:
        img.write(B, MiB)
    inc = c.backup(site.tmp / "inc.vbk", incremental_from="b1", checkpoint="b2")
    assert inc.checkpoint == "b2"
    changes = c.changes("root", "b1", "b2")
    assert changes and all(off <= MiB < off + ln or off >= MiB for off, ln in changes)
    restored, rstats = site.ctx.restore([site.tmp / "full.vbk", site.tmp / "inc.vbk"], "ds1",
                                        "restored")
    assert rstats.checkpoint == "b2"
    with restored.open_image("root") as img:
        assert img.read(len(A), 0) == A and img.read(len(B), MiB) == B
