"""Read stdin to EOF, then print how many bytes arrived and the first 100 of them."""

import sys

data = sys.stdin.buffer.read()
print(len(data))
print(data[:100].decode(errors="replace"))
