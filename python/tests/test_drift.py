"""The binding's declarations against the C headers.

A C file generated from vsm/_cdefs.py and vsm/_constants.py is compiled
with gcc against include/vsm/*.h. It asserts, for every function, that
the header's prototype is the binding's (a pointer to each must have the
same type); for every struct, its size, alignment, every field's offset,
size and type, and that no member follows the binding's last one; for
every enumerator and #define constant, its value. A drift fails to
compile, and the test fails with gcc's message naming the declaration.
"""

from __future__ import annotations

import copy
import pathlib
import re
import shutil
import subprocess
import warnings
from typing import Dict, List, Tuple

import pytest

import vsm
from vsm import _constants as K
from vsm._cdefs import CDEFS, HEADERS
from vsm._ffi import ffi, lib
from conftest import include_dir

pycparser = pytest.importorskip("pycparser")
from pycparser import c_ast, c_generator  # noqa: E402

PRELUDE = "typedef unsigned long size_t; typedef long int64_t; typedef unsigned long uint64_t;" \
          " typedef unsigned int uint32_t; typedef int int32_t; typedef unsigned char uint8_t;\n"


def _parse() -> c_ast.FileAST:
    text = re.sub(r"/\*.*?\*/", "", CDEFS, flags=re.S)
    return pycparser.CParser().parse(PRELUDE + text, "_cdefs.py")


def _rename(node: c_ast.Node, name: str) -> None:
    """Give the declarator of @node (a Decl/Typedef type chain) name @name."""
    t = node
    while not isinstance(t, c_ast.TypeDecl):
        t = t.type
    t.declname = name


def _typedef_of(decl: c_ast.Node, name: str) -> str:
    """'typedef <decl's type> name;' as C text."""
    td = c_ast.Typedef(name, [], ["typedef"], copy.deepcopy(decl.type))
    _rename(td, name)
    return c_generator.CGenerator().visit(td) + ";"


def generate() -> Tuple[str, Dict[str, int], List[str]]:
    """The C text, the line of each struct's trailing-member probe, and the
    names of everything checked."""
    ast = _parse()
    out = ["#include <stddef.h>", "#include <stdint.h>", "#include <vsm/vsm.h>",
           "#include <vsm/migrate.h>", "#include <vsm/backend.h>", "",
           "#define SAME(a, b) __builtin_types_compatible_p(__typeof__(a), b)", ""]
    checked: List[str] = []
    probes: List[Tuple[str, str]] = []
    gen = c_generator.CGenerator()
    prelude = {"size_t", "int64_t", "uint64_t", "uint32_t", "int32_t", "uint8_t"}
    for node in ast.ext:
        if getattr(node, "name", None) in prelude:
            continue
        if isinstance(node, c_ast.Decl) and isinstance(node.type, c_ast.FuncDecl):
            name = node.name
            if name not in dir(lib):
                continue
            t = "drift_fn_" + name
            out.append(_typedef_of(node, t))
            out.append('_Static_assert(SAME(%s, %s), "function %s: the binding\'s prototype '
                       'differs from the header\'s");' % (name, t, name))
            checked.append(name)
        elif isinstance(node, c_ast.Typedef):
            st = node.type.type if isinstance(node.type, c_ast.TypeDecl) else None
            if isinstance(st, c_ast.Struct) and st.decls:
                name = node.name
                ct = ffi.typeof(name)
                out.append('_Static_assert(sizeof(%s) == %d, "struct %s: size differs");'
                           % (name, ffi.sizeof(ct), name))
                out.append('_Static_assert(_Alignof(%s) == %d, "struct %s: alignment differs");'
                           % (name, ffi.alignof(ct), name))
                fields = dict(ct.fields)
                for d in st.decls:
                    f = fields[d.name]
                    t = "drift_f_%s__%s" % (name, d.name)
                    out.append(_typedef_of(d, t))
                    m = "((%s *)0)->%s" % (name, d.name)
                    out.append('_Static_assert(offsetof(%s, %s) == %d, "%s.%s: offset differs");'
                               % (name, d.name, f.offset, name, d.name))
                    out.append('_Static_assert(sizeof(%s) == %d, "%s.%s: size differs");'
                               % (m, ffi.sizeof(f.type), name, d.name))
                    out.append('_Static_assert(SAME(%s, %s), "%s.%s: type differs");'
                               % (m, t, name, d.name))
                probes.append((name, st.decls[-1].name))
                checked.append(name)
            elif isinstance(st, c_ast.Enum):
                for e in st.values.enumerators:
                    out.append('_Static_assert(%s == %d, "enumerator %s: value differs");'
                               % (e.name, getattr(lib, e.name), e.name))
                    checked.append(e.name)
            elif isinstance(node.type, c_ast.PtrDecl) or isinstance(st, c_ast.Struct):
                # Callback types and opaque handles: the header must have
                # the same type under the same name.
                t = "drift_t_" + node.name
                out.append(_typedef_of(node, t))
                out.append('_Static_assert(__builtin_types_compatible_p(%s, %s), '
                           '"type %s differs");' % (node.name, t, node.name))
                checked.append(node.name)
            else:
                raise AssertionError("drift test does not know %s" % gen.visit(node))
    for n in dir(K):
        if n.startswith("VSM_"):
            out.append('_Static_assert(%s == %d, "constant %s differs");' % (n, getattr(K, n), n))
            checked.append(n)
    # Excess-initializer probes: gcc warns "excess elements" on each line
    # where the binding's last field is the struct's last; a line without
    # the warning is a struct that grew a member the binding lacks.
    out.append("")
    out.append("#ifdef DRIFT_PROBES")
    out.append("void drift_probe(void);")
    out.append("void drift_probe(void)")
    out.append("{")
    lines: Dict[str, int] = {}
    for name, last in probes:
        lines[name] = len(out) + 1
        out.append("\t{ %s p = { .%s = {0}, 0 }; (void)p; }" % (name, last))
    out.append("}")
    out.append("#endif")
    return "\n".join(out) + "\n", lines, checked


def _compile(src: pathlib.Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["gcc", "-std=c11", "-fsyntax-only", "-I", str(include_dir()),
                           *extra, str(src)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Tuple[pathlib.Path, Dict[str, int], List[str]]:
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    text, lines, checked = generate()
    path = tmp_path_factory.mktemp("drift") / "drift.c"
    path.write_text(text)
    return path, lines, checked


def test_headers_are_all_covered() -> None:
    """Calls and constants a header gained since the binding was written
    are not drift (nothing the binding uses changed): they are reported
    as warnings, for python/gen_cdefs.py and hand-written wrappers."""
    inc = include_dir() / "vsm"
    for h in HEADERS:
        assert (inc / h).exists(), h
    declared = set(n for n in dir(lib) if n.startswith("vsm_"))
    missing = []
    for h in HEADERS:
        text = re.sub(r"/\*.*?\*/", "", (inc / h).read_text(), flags=re.S)
        for name in re.findall(r"VSM_API\s[^;(]*?\b(vsm_\w+)\s*\(", text):
            if name not in declared:
                missing.append("%s: %s" % (h, name))
        for name in re.findall(r"^#define\s+(VSM_\w+)\s+\(?\d+u?(?:\s*<<\s*\d+\))?\s*(?:/\*.*)?$",
                               text, re.M):
            if not hasattr(K, name):
                missing.append("%s: %s" % (h, name))
    if missing:
        warnings.warn("the binding does not declare yet (run python/gen_cdefs.py): " +
                      ", ".join(missing))
    assert len(declared) > 200


def test_declarations_match_headers(generated: Tuple[pathlib.Path, Dict[str, int], List[str]]) -> None:
    path, _, checked = generated
    r = _compile(path, "-Wall", "-Wextra", "-Werror")
    assert r.returncode == 0, "binding and headers drifted:\n" + r.stderr[-4000:]
    # Every function the binding declares was checked.
    fns = [n for n in dir(lib) if n.startswith("vsm_") and not isinstance(getattr(lib, n), int)]
    assert set(fns) <= set(checked)
    assert len(fns) > 200


def test_no_struct_grew(generated: Tuple[pathlib.Path, Dict[str, int], List[str]]) -> None:
    path, lines, _ = generated
    r = _compile(path, "-DDRIFT_PROBES", "-Wno-missing-field-initializers",
                 "-Wno-missing-braces")
    assert r.returncode == 0, r.stderr[-4000:]
    warned = set(int(m) for m in re.findall(r":(\d+):\d+: warning: excess elements", r.stderr))
    grown = [name for name, line in lines.items() if line not in warned]
    assert not grown, "structs with members the binding lacks: %s" % grown
    assert len(lines) >= 30


def test_a_drift_is_caught(tmp_path: pathlib.Path) -> None:
    """The checker itself: a header whose struct gained a field and whose
    function changed a parameter fails to compile."""
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    text, lines, _ = generate()
    fake = tmp_path / "inc" / "vsm"
    shutil.copytree(include_dir() / "vsm", fake)
    ctx_h = fake / "context.h"
    s = ctx_h.read_text()
    s = s.replace("\tconst char *backend_dir;\n", "\tconst char *backend_dir;\n\tint added;\n")
    s = s.replace("VSM_API void vsm_ctx_free(vsm_ctx *ctx);", "VSM_API void vsm_ctx_free(const vsm_ctx *ctx);")
    ctx_h.write_text(s)
    src = tmp_path / "drift.c"
    src.write_text(text)
    r = subprocess.run(["gcc", "-std=c11", "-fsyntax-only", "-I", str(tmp_path / "inc"),
                        "-DDRIFT_PROBES", str(src)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "vsm_ctx_free" in r.stderr
    assert "vsm_ctx_opts: size differs" in r.stderr or "vsm_ctx_opts" in r.stderr
    warned = set(int(m) for m in re.findall(r":(\d+):\d+: warning: excess elements", r.stderr))
    assert lines["vsm_ctx_opts"] not in warned
