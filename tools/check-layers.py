#!/usr/bin/env python3
"""Refuse the includes that the per-layer include directories cannot stop.

Each layer of lib/ is compiled with only its own and lower layers'
directories on the include path (lib/meson.build), so `#include "ctx.h"`
from lib/store fails to resolve. A quoted include is also looked up next
to the including file, though, so "../engine/ctx.h" would slip through;
this script runs before the layers are compiled and fails the build on:
  - a quoted include under lib/ holding a '/' other than a public "vsm/..."
    header (the composition root lib/open.c aside: it names the backends);
  - a quoted include under backends/ reaching outside backends/ (only
    "vsm/...", a file of the backend's own directory, or "../common/...");
  - a file of lib/ other than open.c naming a built-in backend's ops or
    hypervisor driver;
  - a call of a backend's datastore ops anywhere but lib/engine/becall.c,
    the one adapter between the core and the vtable (and backend_v1.c,
    the shim that serves 0.1 tables through it).
Usage: check-layers.py LIBDIR BACKENDSDIR STAMP"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
BE_CALL = re.compile(r'\bbe->ops\.\w+\s*\(')
BUILTIN = re.compile(r'\bvsm__(file|libvirt|iscsi)\w*_(backend|hypervisor)_ops\b')


def sources(top):
    for root, _, names in os.walk(top):
        for n in sorted(names):
            if n.endswith(('.c', '.h')):
                yield os.path.join(root, n)


def main():
    libdir, backdir, stamp = sys.argv[1:4]
    bad = []
    for path in sources(libdir):
        rel = os.path.relpath(path, libdir)
        text = open(path, encoding='utf-8').read()
        root = rel == 'open.c'
        for inc in INCLUDE.findall(text):
            if '/' in inc and not inc.startswith('vsm/') and not root:
                bad.append(f'lib/{rel}: #include "{inc}" reaches another layer by path; '
                           'use the layer\'s own include directory (lib/meson.build)')
        if rel not in ('engine/becall.c', 'engine/backend_v1.c') and BE_CALL.search(text):
            bad.append(f'lib/{rel}: calls a backend\'s ops directly; go through '
                       'lib/engine/becall.h')
        if not root and BUILTIN.search(text):
            bad.append(f'lib/{rel}: names a built-in backend; only lib/open.c may')
    for path in sources(backdir):
        rel = os.path.relpath(path, backdir)
        for inc in INCLUDE.findall(open(path, encoding='utf-8').read()):
            if inc.startswith('vsm/') or '/' not in inc:
                continue
            if inc.startswith('../common/') and inc.count('/') == 2:
                continue
            bad.append(f'backends/{rel}: #include "{inc}": backends use include/vsm/ '
                       'and backends/common/ only')
    if bad:
        print('\n'.join(bad), file=sys.stderr)
        sys.exit(1)
    with open(stamp, 'w') as f:
        f.write('ok\n')


main()
