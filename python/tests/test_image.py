"""vsm.image against qemu-img: what we read of images qemu-img made,
and what qemu-img reads of ours."""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import subprocess

import pytest

import vsm
from conftest import MiB, Site

pytestmark = pytest.mark.skipif(not shutil.which("qemu-img"), reason="qemu-img missing")


def qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def pattern_file(path: pathlib.Path, size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    data = bytearray(size)
    for _ in range(40):  # scattered runs of data, the rest zeros
        off = rnd.randrange(0, size - 70000)
        n = rnd.randrange(1, 70000)
        data[off:off + n] = rnd.randbytes(n)
    path.write_bytes(bytes(data))
    return bytes(data)


def test_reads_match_qemu_img_convert(tmp_path: pathlib.Path) -> None:
    # A chain qemu-img made: base (qcow2 from raw data) <- top (overlay,
    # written by qemu-io where available, else a second convert layer).
    raw = tmp_path / "src.raw"
    pattern_file(raw, 8 * MiB, 1)
    base = tmp_path / "base.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", str(raw), str(base))
    top = tmp_path / "top.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", str(top))
    if shutil.which("qemu-io"):
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 300k",
                        "-c", "write -z 3M 128k", str(top)], check=True, capture_output=True)
    expect_path = tmp_path / "expect.raw"
    qemu_img("convert", "-O", "raw", str(top), str(expect_path))
    expect = expect_path.read_bytes()
    with vsm.Image.open(top, readonly=True) as img:
        assert img.size == len(expect)
        got = bytearray()
        step = 192 * 1024 + 512  # unaligned to clusters on purpose
        for off in range(0, img.size, step):
            got += img.read(min(step, img.size - off), off)
        assert bytes(got) == expect
        buf = bytearray(4096)
        img.readinto(buf, MiB)
        assert bytes(buf) == expect[MiB:MiB + 4096]
        info = img.info()
        qinfo = json.loads(qemu_img("info", "--output=json", str(top)))
        assert info.format == "qcow2" and info.virtual_size == qinfo["virtual-size"]
        assert info.cluster_size == qinfo["cluster-size"] and info.backing == "base.qcow2"
        assert [i.format for i in img.chain()] == ["qcow2", "qcow2"]
        # Data ranges of our map read what qemu-img's convert wrote.
        for e in img.map():
            if not e.data:
                assert expect[e.start:e.start + e.length] == bytes(e.length)


def test_qemu_img_reads_what_we_write(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "ours.qcow2"
    vsm.image.create(path, 4 * MiB, cluster_size=65536)
    data = os.urandom(300000)
    with vsm.Image.open(path) as img:
        img.write(data, 100000)
        img.write_zeroes(200000, 65536)
        img.discard(3 * MiB, MiB)
        img.add_bitmap("b0")
        img.write(b"x" * 512, 2 * MiB)
        assert img.bitmap_extents("b0") == [(2 * MiB, 65536)]
        assert [b.name for b in img.bitmaps()] == ["b0"]
        assert img.check().corruptions == 0
    expect = bytearray(4 * MiB)
    expect[100000:100000 + len(data)] = data
    expect[200000:200000 + 65536] = bytes(65536)
    expect[2 * MiB:2 * MiB + 512] = b"x" * 512
    out = tmp_path / "out.raw"
    qemu_img("check", str(path))
    qemu_img("convert", "-O", "raw", str(path), str(out))
    assert out.read_bytes() == bytes(expect)
    # And vsm.image.convert writes what qemu-img compares equal.
    conv = tmp_path / "conv.qcow2"
    vsm.image.convert(path, conv, format="qcow2")
    qemu_img("compare", str(path), str(conv))


def test_device_image_and_golden(site: Site) -> None:
    src = site.tmp / "golden.raw"
    data = pattern_file(src, 2 * MiB, 7)
    site.ctx.import_image("ds1", "golden", src, format="qcow2")
    with site.ctx.open_golden_image("ds1", "golden") as g:
        assert g.read(2 * MiB, 0) == data
    c = site.ctx.create_container("ds1", "web", [vsm.DeviceSpec("root", 0, "qcow2", base="golden")])
    with c.open_image("root") as img:
        assert img.size == 2 * MiB and img.read(2 * MiB, 0) == data
    c.attach("host1")
    loc = c.deploy("root")
    # qemu-img reads the deployed device the same through its backing.
    raw = site.tmp / "dev.raw"
    qemu_img("convert", "-O", "raw", loc.path or "", str(raw))
    assert raw.read_bytes() == data
    back = site.tmp / "back.raw"
    site.ctx.export_image("ds1", "golden", back, format="raw")
    assert back.read_bytes() == data


def test_image_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(vsm.NotFoundError):
        vsm.Image.open(tmp_path / "missing.qcow2")
    vsm.image.create(tmp_path / "a.qcow2", MiB)
    with pytest.raises(vsm.ExistsError):
        vsm.image.create(tmp_path / "a.qcow2", MiB)
    img = vsm.Image.open(tmp_path / "a.qcow2")
    img.close()
    img.close()
    with pytest.raises(vsm.ClosedError):
        img.read(1)
    bad = tmp_path / "bad.qcow2"
    data = bytearray((tmp_path / "a.qcow2").read_bytes())
    data[0:4] = b"QFI\xfb"
    data[4:8] = (99).to_bytes(4, "big")  # qcow2 version 99
    bad.write_bytes(bytes(data))
    with pytest.raises(vsm.Error):
        vsm.Image.open(bad, format="qcow2")
