"""Starts the real `reelay` binary on port 0 with a temp data dir, once per test session."""

import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def reelay_binary() -> str:
    explicit = os.environ.get("REELAY_BIN")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "reelay"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("build reelay first: cargo build --bin reelay (or set REELAY_BIN)")


class Reelay:
    def __init__(self, settings: dict | None = None):
        """`settings`: more `REELAY_*` variables for this server."""
        self.dir = tempfile.TemporaryDirectory()
        env = dict(os.environ)
        env["REELAY_SANDBOX_RUN_SECONDS"] = "1"
        # The tests' webhook receivers listen on loopback.
        env["REELAY_OUTBOUND_ALLOW_CIDRS"] = "127.0.0.1/32"
        env.setdefault("RUST_LOG", "warn")
        env.update(settings or {})
        self.env = env
        self.proc = subprocess.Popen(
            [reelay_binary(), "serve", "--listen", "127.0.0.1:0", "--data-dir", self.dir.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.key = None
        self.base_url = None
        deadline = time.time() + 60
        while self.base_url is None:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("reelay did not start")
            line = self.proc.stdout.readline()
            if m := re.match(r"^\s+(key_[0-9a-f]{128})\s*$", line):
                self.key = m.group(1)
            if m := re.search(r"listening on (http://\S+)", line):
                self.base_url = m.group(1)
        # Keep draining stdout so the child never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def cli(self, *args: str) -> str:
        """Runs a `reelay` admin command against this server's data dir; returns stdout."""
        out = subprocess.run(
            [reelay_binary(), "--data-dir", self.dir.name, *args],
            check=True,
            capture_output=True,
            text=True,
            env=self.env,  # the server's configuration
        )
        return out.stdout

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def reelay():
    server = Reelay()
    yield server
    server.stop()
