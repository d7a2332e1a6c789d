"""Events delivered from the library's thread to Python."""

from __future__ import annotations

import threading
import time
from typing import List

import vsm
from conftest import MiB, Site


def wait_for(cond, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_change_from_another_context_is_an_event(site: Site) -> None:
    got: List[vsm.Event] = []
    on = threading.Event()

    def cb(ev: vsm.Event) -> None:
        got.append(ev)
        on.set()
    eid = site.ctx.on_event(cb)
    list(site.ctx.containers("ds1"))  # the cache knows the datastore now
    with vsm.Context(state_dir=site.tmp / "b") as b:
        b.add_datastore("ds1", site.ds_uri)
        b.create_container("ds1", "theirs", [("root", MiB)]).close()
    # Our next look at the datastore (or the heartbeat) notices the move.
    assert [c.name for c in site.ctx.containers("ds1")] == ["theirs"]
    assert on.wait(30), "no event"
    ev = got[0]
    assert ev.type == vsm.EVENT_DATASTORE_CHANGED and ev.type_name == "datastore-changed"
    assert ev.datastore == "ds1" and ev.generation > 0
    assert site.ctx.callback_errors == []
    site.ctx.remove_event(eid)
    try:
        site.ctx.remove_event(eid)
    except vsm.NotFoundError:
        pass
    else:
        raise AssertionError("unregistered twice")


def test_exception_in_event_callback_is_kept(site: Site) -> None:
    def cb(ev: vsm.Event) -> None:
        raise RuntimeError("from the callback")
    site.ctx.on_event(cb)
    list(site.ctx.containers("ds1"))
    with vsm.Context(state_dir=site.tmp / "b") as b:
        b.add_datastore("ds1", site.ds_uri)
        b.create_container("ds1", "theirs", [("root", MiB)]).close()
    list(site.ctx.containers("ds1"))
    assert wait_for(lambda: site.ctx.callback_errors)
    assert isinstance(site.ctx.callback_errors[0], RuntimeError)
    # The context goes on working.
    assert site.ctx.host("host1").name == "host1"


def test_close_while_a_callback_runs(site: Site) -> None:
    # vsm_ctx_free waits for the event thread, which needs the GIL for
    # its Python callback: the close must not hold the GIL meanwhile.
    inside = threading.Event()

    def cb(ev: vsm.Event) -> None:
        inside.set()
        time.sleep(0.3)
    site.ctx.on_event(cb)
    list(site.ctx.containers("ds1"))
    with vsm.Context(state_dir=site.tmp / "b") as b:
        b.add_datastore("ds1", site.ds_uri)
        b.create_container("ds1", "theirs", [("root", MiB)]).close()
    list(site.ctx.containers("ds1"))
    assert inside.wait(30)
    done = threading.Event()
    t = threading.Thread(target=lambda: (site.ctx.close(), done.set()))
    t.start()
    t.join(60)
    assert done.is_set()


def test_log_callback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines: List[str] = []
    with vsm.Context(state_dir=tmp_path / "st", log=lambda lvl, msg: lines.append(msg),
                     log_level=vsm.LOG_DEBUG) as ctx:
        ctx.add_datastore("ds1", "file://" + str(tmp_path / "ds1"), create=True)
        ctx.create_container("ds1", "web", [("root", MiB)])
    assert ctx.callback_errors == []
    assert all(isinstance(x, str) for x in lines)


def test_lease_renew_manual(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with vsm.Context(state_dir=tmp_path / "st", lease_manual=True) as ctx:
        ctx.add_datastore("ds1", "file://" + str(tmp_path / "ds1"), create=True)
        ctx.add_host("h1")
        ctx.link("h1", "ds1")
        c = ctx.create_container("ds1", "web", [("root", MiB)])
        c.attach("h1")
        assert ctx.renew_leases() >= 0
        (lease,) = ctx.leases("ds1")
        assert lease.container == "web" and lease.host == "h1" and lease.is_mine
        assert lease.version >= 1
