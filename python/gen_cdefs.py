#!/usr/bin/env python3
"""Regenerate vsm/_cdefs.py and vsm/_constants.py from include/vsm/*.h.

Run it after a header gained calls, structs or constants (the drift test
warns about them): python3 python/gen_cdefs.py [INCLUDE_DIR]. It keeps
the declarations as the headers write them, without comments and
preprocessor lines; the Python wrappers of new calls are written by hand.
"""

from __future__ import annotations

import pathlib
import re
import runpy
import sys

HERE = pathlib.Path(__file__).resolve().parent
# Read without importing the package (which loads the library).
_CURRENT = runpy.run_path(str(HERE / "vsm" / "_cdefs.py"))
HEADERS, BACKEND_CALLS = _CURRENT["HEADERS"], _CURRENT["BACKEND_CALLS"]

BACKEND_DECLS = {"vsm_error_set": "int vsm_error_set(int code, const char *fmt, ...);"}


def declarations(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S).replace("\\\n", " ")
    lines = [ln.rstrip() for ln in text.split("\n")
             if not ln.strip().startswith("#") and ln.strip() not in ("VSM_BEGIN_DECL", "VSM_END_DECL")]
    text = "\n".join(lines).replace("VSM_API ", "").replace("VSM_IMAGE_CID_STRLEN + 1", "37")
    text = re.sub(r"\s*VSM_PRINTF\(\d+,\s*\d+\)", "", text)
    return re.sub(r"\n{2,}", "\n", text).strip()


def constants(text: str) -> list:
    out = []
    for m in re.finditer(r"^#define (VSM_\w+)\s+(.+?)\s*(?:/\*.*)?$", text, re.M):
        name, value = m.group(1), m.group(2).strip()
        shift = re.fullmatch(r"\(1u?\s*<<\s*(\d+)\)", value)
        if shift:
            out.append((name, 1 << int(shift.group(1))))
        elif re.fullmatch(r"\d+u?", value):
            out.append((name, int(value.rstrip("u"))))
    return out


def main() -> None:
    inc = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "include"
    cdefs = HERE / "vsm" / "_cdefs.py"
    old = cdefs.read_text()
    head = old[: old.index('CDEFS = r"""')]
    body = "\n".join("/* %s */\n%s\n" % (h, declarations((inc / "vsm" / h).read_text()))
                     for h in HEADERS)
    body += "\n/* backend.h (only what BACKEND_CALLS names) */\n"
    body += "\n".join(BACKEND_DECLS[n] for n in BACKEND_CALLS) + "\n"
    cdefs.write_text(head + 'CDEFS = r"""\n' + body + '"""\n')
    consts = HERE / "vsm" / "_constants.py"
    old = consts.read_text()
    out = [old[: old.index("\n\n") + 1]]
    for h in HEADERS:
        found = constants((inc / "vsm" / h).read_text())
        if found:
            out.append("\n# %s\n" % h + "".join("%s = %d\n" % nv for nv in found))
    consts.write_text("".join(out))


if __name__ == "__main__":
    main()
