"""Progress callbacks: delivered, cancelling, and exceptions in them."""

from __future__ import annotations

import os
from typing import List, Tuple

import pytest

import vsm
from conftest import MiB, Site


def filled(site: Site) -> vsm.Container:
    c = site.ctx.create_container("ds1", "web", [("root", 8 * MiB, "qcow2")])
    with c.open_image("root", writable=True) as img:
        for i in range(4):
            img.write(bytes([i + 1]) * MiB, i * 2 * MiB)
    return c


def test_progress_is_reported(site: Site) -> None:
    c = filled(site)
    seen: List[Tuple[int, int]] = []
    c.export(site.tmp / "b", progress=lambda d, t: seen.append((d, t)))
    assert len(seen) >= 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1][0] == seen[-1][1] > 0


def test_cancel_undoes(site: Site) -> None:
    c = filled(site)
    calls = []

    def progress(done: int, total: int) -> bool:
        calls.append(done)
        return len(calls) >= 2  # go on once, then cancel
    with pytest.raises(vsm.CanceledError) as ei:
        c.export(site.tmp / "b", progress=progress)
    assert ei.value.code == 17 and "cancel" in ei.value.message
    assert len(calls) == 2  # not called again after the cancel
    assert not os.path.exists(site.tmp / "b")  # nothing left
    c.export(site.tmp / "b")  # and the container is fine


def test_exception_in_progress_is_raised_after_the_call(site: Site) -> None:
    c = filled(site)

    def progress(done: int, total: int) -> None:
        raise ZeroDivisionError("in progress")
    with pytest.raises(ZeroDivisionError, match="in progress") as ei:
        c.export(site.tmp / "b", progress=progress)
    assert isinstance(ei.value.__cause__, vsm.CanceledError)
    assert not os.path.exists(site.tmp / "b")


def test_import_progress_and_cancel(site: Site) -> None:
    c = filled(site)
    c.export(site.tmp / "b")
    with pytest.raises(vsm.CanceledError):
        site.ctx.import_bundle(site.tmp / "b", "ds1", "copy", progress=lambda d, t: True)
    assert [x.name for x in site.ctx.containers()] == ["web"]
    seen: List[int] = []
    copy, _ = site.ctx.import_bundle(site.tmp / "b", "ds1", "copy", progress=lambda d, t: seen.append(d))
    assert seen and copy.name == "copy"


def test_image_copy_progress_and_cancel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = tmp_path / "base.qcow2"
    vsm.image.create(base, 8 * MiB)
    with vsm.Image.open(base) as img:
        img.write(b"\x11" * (2 * MiB), 0)
        img.freeze()
    top = tmp_path / "top.qcow2"
    vsm.image.create(top, backing="base.qcow2", backing_format="qcow2")
    with vsm.Image.open(top) as img:
        img.write(b"\x22" * MiB, 4 * MiB)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(vsm.CanceledError):
        vsm.image.copy(top, out / "top.qcow2", progress=lambda d, t: True)
    assert list(out.iterdir()) == []
    seen: List[Tuple[int, int]] = []
    stats = vsm.image.copy(top, out / "top.qcow2", progress=lambda d, t: seen.append((d, t)))
    assert stats.layers_copied == 2 and seen[-1][0] == seen[-1][1]
    with vsm.Image.open(out / "top.qcow2") as img:
        assert img.read(MiB, 0) == b"\x11" * MiB and img.read(MiB, 4 * MiB) == b"\x22" * MiB
