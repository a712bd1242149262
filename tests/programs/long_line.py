"""Write one 100,000-byte line, a short line, and a last line without a trailing newline."""

import sys

sys.stdout.write("a" * 100_000 + "\nafter\nlast-without-newline")
