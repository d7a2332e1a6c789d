"""The calls of later issues: placement, host tags, consistency groups."""

from __future__ import annotations

import pytest

import vsm
from conftest import MiB, Site


def test_host_tags_and_limits(site: Site) -> None:
    site.ctx.tag_host("host1", "ssd")
    site.host.tag("zone=a")
    site.ctx.set_host_limit("host1", 5)
    h = site.ctx.host("host1")
    assert h.tags == ("ssd", "zone=a") and h.max_containers == 5
    h.untag("ssd")
    assert site.ctx.host("host1").tags == ("zone=a",)


def test_placement(site: Site) -> None:
    site.ctx.add_datastore("ds2", "file://" + str(site.tmp / "ds2"), create=True)
    p = site.ctx.place_datastore([("root", MiB)])
    assert {c.name for c in p.candidates} == {"ds1", "ds2"} and p.best in ("ds1", "ds2")
    p = site.ctx.place_datastore([("root", 1 << 50)])
    assert p.best is None and {name for name, _ in p.rejected} == {"ds1", "ds2"}
    with site.ctx.reserve("web", [("root", MiB)], datastores=["ds2"]) as r:
        assert r.datastore == "ds2" and r.name == "web" and r.bytes >= MiB
        c = r.create_container([("root", MiB)])
    assert c.datastore == "ds2"
    site.ctx.add_host("host2")
    site.ctx.link("host2", "ds2")
    site.ctx.tag_host("host2", "gpu")
    hp = c.place_host(tags=["gpu"])
    assert hp.best is None and hp.rejected[0][0] == "host2" and hp.rejected[0][1]
    site.ctx.keep_leases("host2")  # this context now acts for host2
    hp = c.place_host(tags=["gpu"], watch=True)
    assert hp.best == "host2", hp
    site.ctx.keep_leases("host1")
    assert site.ctx.place_host_for(["ds1"], watch=True).best == "host1"
    r2 = site.ctx.reserve("other", [("root", MiB)])
    r2.abort()
    with pytest.raises(vsm.Error):
        r2.create_container([("root", MiB)])


def test_group_checkpoint_round_trip(site: Site) -> None:
    a = site.ctx.create_container("ds1", "a", [("root", MiB, "qcow2")])
    b = site.ctx.create_container("ds1", "b", [("root", MiB, "qcow2")])
    with a.open_image("root", writable=True) as img:
        img.write(b"a1" * 256, 0)
    with site.ctx.create_group("app", [a, b]) as g:
        assert [m.name for m in g.members] == ["a", "b"] and g.datastore == "ds1"
        with g.open_image("b", "root") as gi:
            gi.write(b"b1" * 256, 0)
            gi.flush()
            g.checkpoint("g1")
            gi.write(b"b2" * 256, 0)
            assert gi.read(512, 0) == b"b2" * 256
        with a.open_image("root", writable=True) as img:
            img.write(b"a2" * 256, 0)
        g.revert("g1")
        with b.open_image("root") as img:
            assert img.read(512, 0) == b"b1" * 256
        with a.open_image("root") as img:
            assert img.read(512, 0) == b"a1" * 256
        assert [cp.name for cp in g.checkpoints] == ["g1"]
        assert len(g.checkpoints[0].members) == 2
    assert [x.name for x in site.ctx.groups()] == ["app"]
    g = site.ctx.group("app")
    g.delete_checkpoint("g1")
    g.remove("b")
    assert [m.name for m in g.members] == ["a"]
    g.destroy()
    with pytest.raises(vsm.NotFoundError):
        site.ctx.group("app")


def test_group_backup_and_recover(site: Site) -> None:
    a = site.ctx.create_container("ds1", "a", [("root", MiB, "qcow2")])
    with a.open_image("root", writable=True) as img:
        img.write(b"a1" * 256, 0)
    g = site.ctx.create_group("app", [a])
    seen = []
    g.backup(site.tmp / "sets", checkpoint="p1", progress=lambda d, t: seen.append(d))
    site.ctx.add_datastore("ds2", "file://" + str(site.tmp / "ds2"), create=True)
    steps: list = []
    g2 = site.ctx.recover_group(site.tmp / "sets", "ds2", name="app2",
                                step=lambda m, st, d: steps.append((m, st)))
    assert ("a", "restore") in steps and (None, "group") in steps
    assert g2.name == "app2" and [m.datastore for m in g2.members] == ["ds2"]
    with site.ctx.container(g2.members[0].name, "ds2").open_image("root") as img:
        assert img.read(512, 0) == b"a1" * 256


WF = """{"name": "mk", "params": {"name": {"type": "string"}, "size": {"type": "size", "default": "1M"}},
 "steps": [{"id": "create", "op": "container.create",
            "args": {"name": "${param.name}", "datastore": "ds1",
                     "devices": [{"name": "root", "size": "${param.size}", "format": "qcow2"}]}},
           {"id": "attach", "op": "container.attach",
            "args": {"container": "${param.name}", "datastore": "ds1", "host": "host1"}}]}"""


def test_workflow_run_cancel_and_log(site: Site) -> None:
    wf = site.ctx.parse_workflow(WF, "test")
    assert wf.name == "mk" and [s[0] for s in wf.steps] == ["create", "attach"]
    assert [(p.name, p.default) for p in wf.params] == [("name", None), ("size", '"1M"')] or \
        [p.name for p in wf.params] == ["name", "size"]
    events = []
    run_id = wf.run({"name": "vm1"}, progress=lambda *a: events.append(a[4]))
    assert "done" in events and len(run_id) == 36
    assert site.ctx.container("vm1").attached_host == "host1"
    run = site.ctx.workflow_run(run_id)
    assert run.template == "mk" and [s.id for s in run.steps] == ["create", "attach"]
    # Cancelled after the first step: rolled back, nothing left.
    with pytest.raises(vsm.CanceledError) as ei:
        wf.run({"name": "vm2"}, progress=lambda rid, i, n, sid, ev: ev == "done")
    assert len(ei.value.run_id) == 36  # type: ignore[attr-defined]
    with pytest.raises(vsm.NotFoundError):
        site.ctx.container("vm2")
    assert len(list(site.ctx.workflow_runs())) == 2
    with pytest.raises(vsm.InvalidArgumentError):
        site.ctx.parse_workflow('{"name": "bad", "steps": [{"id": "x", "op": "no.such"}]}')


def test_group_plan(site: Site) -> None:
    a = site.ctx.create_container("ds1", "a", [("root", MiB)])
    b = site.ctx.create_container("ds1", "b", [("root", MiB)])
    g = site.ctx.create_group("app", [a, b])
    g.set_plan([vsm.PlanEntry("a", priority=10),
                vsm.PlanEntry("b", priority=20, after=("a",), mac="52:54:00:00:00:01",
                              network="br0", ip="10.0.0.2", prefix=24)])
    plan = {e.member: e for e in g.plan}
    assert plan["b"].after == ("a",) and plan["b"].ip == "10.0.0.2" and plan["b"].prefix == 24
    assert plan["a"].priority == 10 and plan["a"].mac is None
    with pytest.raises(vsm.InvalidArgumentError):
        g.set_plan([vsm.PlanEntry("a", after=("b",)), vsm.PlanEntry("b", after=("a",))])


def test_workflow_op_in_python(site: Site) -> None:
    made = []

    def run(ctx: vsm.Context, args: dict) -> dict:
        if args["what"] == "boom-2":
            raise vsm.NoSpaceError("no room for " + args["what"])
        made.append(args["what"])
        return {"made": args["what"]}

    def undo(ctx: vsm.Context, args: dict, result: dict) -> None:
        made.remove(result["made"])
    site.ctx.register_workflow_op("py.make", {"args": {"what": {"type": "string", "required": True}},
                                              "results": ["made"]}, run, undo)
    wf = site.ctx.parse_workflow("""{"name": "t", "params": {"w": {"type": "string"}},
      "steps": [{"id": "one", "op": "py.make", "args": {"what": "${param.w}"}},
                {"id": "two", "op": "py.make", "args": {"what": "${steps.one.made}-2"}}]}""")
    wf.run({"w": "x"})
    assert made == ["x", "x-2"]
    with pytest.raises(vsm.NoSpaceError, match="no room for boom-2"):
        wf.run({"w": "boom"})
    assert made == ["x", "x-2"]  # step one was undone by the rollback


def test_group_image_open_when_context_closes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    site = Site(tmp_path)
    a = site.ctx.create_container("ds1", "a", [("root", MiB, "qcow2")])
    g = site.ctx.create_group("app", [a])
    gi = g.open_image("a", "root")
    g.close()  # the image keeps the group handle
    gi.write(b"x" * 512, 0)
    site.ctx.close()  # closes the image, then the group
    with pytest.raises(vsm.ClosedError):
        gi.read(512)


def test_placement_filters_and_weighers_in_python(site: Site) -> None:
    site.ctx.add_datastore("ds2", "file://" + str(site.tmp / "ds2"), create=True)
    seen = []

    def no_ds1(info: vsm.DatastoreInfo) -> "str | None":
        seen.append(info)
        return "not this one" if info.name == "ds1" else None
    p = site.ctx.place_datastore([("root", MiB)], filters=[vsm.Filter("mine", datastore=no_ds1)])
    assert p.best == "ds2" and ("ds1", "mine: not this one") in p.rejected
    assert {i.name for i in seen} == {"ds1", "ds2"} and all(i.need > 0 for i in seen)
    # A weigher that prefers ds1 by name, strongly.
    w = vsm.Weigher("byname", datastore=lambda i: 1.0 if i.name == "ds1" else 0.0, multiplier=100)
    assert site.ctx.place_datastore([("root", MiB)], weighers=[w]).best == "ds1"

    def broken(info: vsm.HostInfo) -> None:
        raise OSError("filter bug")
    site.ctx.keep_leases("host1")  # live, so that the caller's filters run
    hosts: list = []
    p = site.ctx.place_host_for(["ds1"], watch=True,
                                filters=[vsm.Filter("see", host=lambda h: hosts.append(h))])
    assert p.best == "host1" and hosts[0].name == "host1" and hosts[0].live
    with pytest.raises(OSError, match="filter bug"):
        site.ctx.place_host_for(["ds1"], filters=[vsm.Filter("broken", host=broken)])
