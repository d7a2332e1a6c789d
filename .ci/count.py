#!/usr/bin/env python3
"""Print one 'N passed, N failed' line from meson testlog.json files.

Check suites print 'Checks: N, Failures: F, Errors: E'; shell tests print
'N checks, M failures'. Each check counts; a test that printed neither
counts as one. A test meson saw fail counts at least one failure even if
its own summary was clean (a sanitizer report after the summary, say).
An argument --failed-step=NAME counts a step that ran no tests (a build
that did not compile) as one failure, so the line never reads "0 failed"
on a run that failed."""
import json
import re
import sys

CHECK = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
SHELL = re.compile(r"^(\d+) checks, (\d+) failures$", re.M)

passed = failed = 0
failures = []  # (log, test name, why): printed so CI's tail says which
for arg in sys.argv[1:]:
    if arg.startswith("--failed-step="):
        failed += 1
        failures.append(("CI", arg.split("=", 1)[1], "build failed", []))
        continue
    path = arg
    with open(path) as f:
        for line in f:
            t = json.loads(line)
            out = t.get("stdout") or ""
            ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
            p = fl = 0
            for m in CHECK.finditer(out):
                n, fa, er = map(int, m.groups())
                p += n - fa - er
                fl += fa + er
            for m in SHELL.finditer(out):
                n, fa = map(int, m.groups())
                p += n - fa
                fl += fa
            if p == 0 and fl == 0:
                p, fl = (1, 0) if ok else (0, 1)
            elif not ok and fl == 0:
                fl = 1
            passed += p
            failed += fl
            if fl:
                lines = [l for l in out.splitlines()
                         if ":F:" in l or ":E:" in l or "FAIL" in l
                         or "ERROR" in l][:5]
                failures.append((path, t.get("name"), t.get("result"), lines))
for path, name, result, lines in failures:
    print(f"FAILED {name} ({result}) in {path}")
    for l in lines:
        print(f"    {l[:300]}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
