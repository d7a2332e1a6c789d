"""Fixtures of the binding's suite: every test gets its own state
directory and file datastore under tmp_path."""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import vsm  # noqa: E402

MiB = 1 << 20


class Site:
    """A context with datastore 'ds1' (file, under tmp) and host 'host1'
    linked to it."""

    def __init__(self, tmp: pathlib.Path, name: str = "st") -> None:
        self.tmp = tmp
        self.ds_dir = tmp / "ds1"
        self.ds_uri = "file://" + str(self.ds_dir)
        self.ctx = vsm.Context(state_dir=tmp / name, log_level=vsm.LOG_ERROR)
        self.ds = self.ctx.add_datastore("ds1", self.ds_uri, create=True)
        self.host = self.ctx.add_host("host1")
        self.host.link("ds1")


@pytest.fixture
def site(tmp_path: pathlib.Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.ctx.close()


@pytest.fixture
def ctx(site: Site) -> vsm.Context:
    return site.ctx


def include_dir() -> pathlib.Path:
    env = os.environ.get("VSM_INCLUDE_DIR")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(__file__).resolve().parent.parent.parent / "include"
