"""``python -m gnomon.supervise -- COMMAND ...``: run a long-lived process and start it again whenever it dies.

What Docker's ``restart: unless-stopped`` and systemd's ``Restart=always`` do for a production installation, for the
quick start and the tests: a Celery prefork worker exits with "Unrecoverable error" when Redis goes away while it
holds unacknowledged messages (kombu 5.7's Redis transport fails to restore them on the closed connection), and a
campaign must not stop because of that. Stopping the supervisor (SIGTERM, SIGINT) stops the child and ends the loop;
a child that keeps dying faster than ``--min-uptime`` seconds is given up on after ``--max-fast-exits`` tries.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-uptime", type=float, default=30.0, help="a run shorter than this (s) is a fast exit")
    parser.add_argument("--max-fast-exits", type=int, default=5, help="give up after this many fast exits in a row")
    parser.add_argument("--delay", type=float, default=2.0, help="seconds to wait before starting again")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command given")

    child: subprocess.Popen | None = None
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fast_exits = 0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)
        code = child.wait()
        if stopping:
            return code
        uptime = time.monotonic() - started
        fast_exits = fast_exits + 1 if uptime < options.min_uptime else 0
        print(f"gnomon.supervise: {command[0]} … exited with {code} after {uptime:.0f} s; "
              f"starting it again ({fast_exits} fast exit(s) in a row)", file=sys.stderr, flush=True)
        if fast_exits >= options.max_fast_exits:
            print(f"gnomon.supervise: giving up after {fast_exits} fast exits", file=sys.stderr, flush=True)
            return code or 1
        time.sleep(options.delay)


if __name__ == "__main__":
    sys.exit(main())
