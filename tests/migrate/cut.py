# cut.py N CMD...: run CMD with the first N bytes of our stdin, then
# close our stdin (a connection that breaks after N bytes); CMD's stdout
# is ours. Used through `exec`, so no shell keeps the stream open.
import os
import subprocess
import sys

n = int(sys.argv[1])
p = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, bufsize=0)
while n > 0:
    b = os.read(0, min(n, 65536))
    if not b:
        break
    try:
        v = memoryview(b)
        while v:
            v = v[os.write(p.stdin.fileno(), v):]
    except BrokenPipeError:
        break
    n -= len(b)
os.close(0)
try:
    p.stdin.close()
except BrokenPipeError:
    pass
sys.exit(p.wait())
