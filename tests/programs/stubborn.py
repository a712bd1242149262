"""Ignore SIGINT and SIGTERM, print "ready", then sleep: only SIGKILL stops it."""

import signal
import time

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
