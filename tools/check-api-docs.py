#!/usr/bin/env python3
"""Check that every symbol libvsm exports is documented in its header.

Reads the exported names from the version script (lib/libvsm.syms) and
Doxygen's XML output of include/vsm/ (doc/Doxyfile.in), and fails naming
each exported function that has no documentation comment, or that Doxygen
did not find in any public header at all.

usage: check-api-docs.py LIBVSM.SYMS DOXYGEN-XML-DIR
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def exported(syms_path):
    """The names the version script exports (comments and globs left out)."""
    text = re.sub(r"/\*.*?\*/", "", open(syms_path).read(), flags=re.S)
    names = set()
    for block in re.findall(r"global\s*:(.*?)(?:local\s*:|\})", text, flags=re.S):
        for word in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*;", block):
            names.add(word)
    return names


def documented(xml_dir):
    """name -> True if Doxygen found a description for it."""
    seen = {}
    for path in glob.glob(os.path.join(xml_dir, "*.xml")):
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            sys.exit("check-api-docs: %s: %s" % (path, e))
        for m in root.iter("memberdef"):
            if m.get("kind") not in ("function", "variable"):
                continue
            name = m.findtext("name")
            desc = "".join(m.find("briefdescription").itertext()).strip() + \
                "".join(m.find("detaileddescription").itertext()).strip()
            seen[name] = seen.get(name, False) or bool(desc)
    return seen


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    names = exported(sys.argv[1])
    if not names:
        sys.exit("check-api-docs: no exported symbols in %s" % sys.argv[1])
    docs = documented(sys.argv[2])
    missing = sorted(n for n in names if n not in docs)
    bare = sorted(n for n in names if docs.get(n) is False)
    for n in missing:
        print("not in any public header: %s" % n)
    for n in bare:
        print("not documented: %s" % n)
    if missing or bare:
        sys.exit(1)
    print("ok: all %d exported symbols are documented" % len(names))


if __name__ == "__main__":
    main()
