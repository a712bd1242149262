"""Print COUNT numbered lines, alternating stdout and stderr, then exit with EXIT_CODE."""

import sys

count, exit_code = int(sys.argv[1]), int(sys.argv[2])
for i in range(count):
    stream = sys.stdout if i % 2 == 0 else sys.stderr
    stream.write(f"line {i}\n")
    stream.flush()  # flush each line so the merged order is the order written
sys.exit(exit_code)
