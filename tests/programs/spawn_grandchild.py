"""Start a long-sleeping grandchild (sharing our stdout), write its pid to PIDFILE, print "ready",
then either hang (MODE=hang) or exit at once leaving the grandchild behind (MODE=exit)."""

import os
import signal
import subprocess
import sys
import time

# an inherited "ignore SIGINT" (e.g. from a shell's background job) must not change how we react to it
signal.signal(signal.SIGINT, signal.default_int_handler)
pidfile, mode = sys.argv[1], sys.argv[2]
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(pidfile + ".tmp", "w") as f:
    f.write(str(grandchild.pid))
os.replace(pidfile + ".tmp", pidfile)  # the test never sees a half-written pid
print("ready", flush=True)
if mode == "hang":
    time.sleep(60)
