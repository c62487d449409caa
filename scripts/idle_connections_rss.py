#!/usr/bin/env python3
"""RSS of a running `reelay serve` before, during and after N idle keep-alive connections.

Usage: scripts/idle_connections_rss.py BINARY [N]

Starts BINARY (`reelay serve`) on a free port with a temp data dir and long connection
deadlines (so the connections stay open while measured), opens N connections that each make
one `GET /healthz` and then sit idle, reads VmRSS from /proc, closes them, and reads it again
after the server has noticed. Loopback only; bounded in count and time.
"""
import os, resource, socket, subprocess, sys, tempfile, time

def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 256)), hard))
    data = tempfile.mkdtemp()
    env = dict(os.environ, REELAY_SERVER__HEADER_TIMEOUT_MS="600000",
               REELAY_SERVER__KEEP_ALIVE_TIMEOUT_MS="600000", REELAY_LOG="warn")
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        addr = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("reelay listening on "):
                addr = line.split()[3].removeprefix("http://")
                break
        host, port = addr.rsplit(":", 1)
        time.sleep(2)
        before = rss_mb(proc.pid)
        socks = []
        for _ in range(n):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(4096)
            socks.append(s)
        time.sleep(2)
        during = rss_mb(proc.pid)
        for s in socks:
            s.close()
        time.sleep(5)
        after = rss_mb(proc.pid)
        print(f"{n} idle keep-alive connections: RSS before {before:.1f} MB, "
              f"during {during:.1f} MB, after {after:.1f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

if __name__ == "__main__":
    main()
