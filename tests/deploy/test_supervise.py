"""gnomon.supervise: a dead worker is started again (as Docker's restart policy does); SIGTERM stops it for good."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_child_that_dies_is_started_again_until_it_keeps_dying_fast(tmp_path):
    runs = tmp_path / "runs"
    child = f"open({str(runs)!r}, 'a').write('x'); raise SystemExit(3)"
    done = subprocess.run([sys.executable, "-m", "gnomon.supervise", "--min-uptime", "60", "--max-fast-exits", "3",
                           "--delay", "0.1", "--", sys.executable, "-c", child], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3 and runs.read_text() == "xxx"
    assert "starting it again" in done.stderr and "giving up after 3 fast exits" in done.stderr


def test_sigterm_stops_the_child_and_the_supervisor(tmp_path):
    started = tmp_path / "started"
    child = f"import time; open({str(started)!r}, 'w').write('1'); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-m", "gnomon.supervise", "--", sys.executable, "-c", child], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0  # the child's exit status (killed by SIGTERM), and no restart
