"""Write TOTAL bytes of "x" to stdout without a single newline."""

import sys

total = int(sys.argv[1])
chunk = b"x" * (1 << 20)
while total > 0:
    sys.stdout.buffer.write(chunk[:total])
    total -= len(chunk)
