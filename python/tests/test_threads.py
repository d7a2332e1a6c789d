"""Threads: one context shared, separate contexts on one datastore, and
callbacks from library threads while the GIL is elsewhere."""

from __future__ import annotations

import os
import threading
from typing import Callable, List

import vsm
from conftest import MiB, Site


def run_all(fns: List[Callable[[], None]]) -> List[BaseException]:
    errors: List[BaseException] = []
    lock = threading.Lock()

    def wrap(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as e:
            with lock:
                errors.append(e)
    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive(), "a thread hung"
    return errors


def test_threads_share_one_context(site: Site) -> None:
    ctx = site.ctx

    def worker(i: int) -> Callable[[], None]:
        def fn() -> None:
            for k in range(3):
                name = "t%d-%d" % (i, k)
                with ctx.create_container("ds1", name, [("root", MiB, "qcow2")]) as c:
                    c.attach("host1")
                    assert c.deploy("root").path
                    c.undeploy("root")
                    c.detach()
                list(ctx.containers("ds1"))
                # Errors are per thread: this thread's message, not another's.
                try:
                    ctx.container("missing-%d" % i, "ds1")
                except vsm.NotFoundError as e:
                    assert "missing-%d" % i in e.message
                else:
                    raise AssertionError("no NotFoundError")
        return fn
    assert run_all([worker(i) for i in range(4)]) == []
    assert len(list(ctx.containers())) == 12


def test_threads_with_their_own_contexts(site: Site) -> None:
    names = []

    def worker(i: int) -> Callable[[], None]:
        def fn() -> None:
            with vsm.Context(state_dir=site.tmp / ("st%d" % i)) as own:
                own.add_datastore("ds1", site.ds_uri)
                for k in range(3):
                    own.create_container("ds1", "p%d-%d" % (i, k), [("root", MiB)]).close()
                    names.append("p%d-%d" % (i, k))
        return fn
    assert run_all([worker(i) for i in range(3)]) == []
    seen = sorted(c.name for c in site.ctx.containers("ds1"))
    assert seen == sorted(names) and len(seen) == 9  # nothing lost


def test_one_handle_from_several_threads(site: Site) -> None:
    # The binding serializes calls on one handle (the C API asks it).
    c = site.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
    c.attach("host1")

    def fn() -> None:
        for _ in range(5):
            c.deploy("root")
            c.refresh()
            assert c.attached_host == "host1"
    assert run_all([fn, fn, fn]) == []


def test_calls_release_the_gil(site: Site) -> None:
    # The library reads the checkpoint's VM-state blob from a pipe that a
    # Python thread fills chunk by chunk: that thread needs the GIL between
    # chunks, so the call can only finish if it does not hold it.
    c = site.ctx.create_container("ds1", "web", [("root", MiB, "qcow2")])
    blob = bytes(range(256)) * 1024 * 2  # 512 KiB, several pipe buffers
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb", buffering=0) as f:
            for i in range(0, len(blob), 65536):
                f.write(blob[i:i + 65536])
    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb", buffering=0) as src:
        cp = c.create_checkpoint("cp1", state=src)
    t.join(60)
    assert not t.is_alive()
    assert cp.state_size == len(blob)
    assert c.checkpoint_state("cp1") == blob


def test_progress_callback_is_called_in_the_calling_thread(site: Site) -> None:
    c = site.ctx.create_container("ds1", "web", [("root", 4 * MiB, "qcow2")])
    with c.open_image("root", writable=True) as img:
        img.write(b"\xab" * MiB, 0)
    seen = []
    me = threading.get_ident()
    c.export(site.tmp / "web.bundle",
             progress=lambda done, total: seen.append((threading.get_ident(), done, total)))
    assert seen and all(tid == me for tid, _, _ in seen)
    assert all(0 <= done <= total for _, done, total in seen)
