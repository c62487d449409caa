#!/usr/bin/env python3
"""Times the console's pages against a SQLite data dir holding many tasks.

    scripts/console_bench.py --bin target/release/reelay --tasks 100000

Starts reelay on a fresh data dir, makes one real task through the Runway dialect, stops it,
clones that task N times in one SQL statement (ids and creation times in order, states, models
and channels varied, all finished so the engine leaves them alone), starts reelay again and
requests each page R times, printing the median and the slowest request time per page (on
loopback: an upper bound of the server's time).
"""

import argparse
import re
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

ADMIN = "admin-token-of-the-console-bench"


def start(binary, data):
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"REELAY_ADMIN_TOKEN": ADMIN, "REELAY_LOG": "warn", "REELAY_SANDBOX_RUN_SECONDS": "1", "PATH": "/usr/bin:/bin"},
    )
    key = base = None
    while base is None:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("reelay did not start")
        if m := re.match(r"^\s+(key_[0-9a-f]+)\s*$", line):
            key = m.group(1)
        if m := re.search(r"listening on (http://\S+)", line):
            base = m.group(1)
    return proc, key, base


def seed(db, n):
    c = sqlite3.connect(db)
    cols = [r[1] for r in c.execute("PRAGMA table_info(tasks)")]
    (template,) = c.execute("SELECT id FROM tasks LIMIT 1").fetchone()
    over = {
        "id": "printf('00%06x-0000-7000-8000-%012x', i, i)",
        "created_at": f"t.created_at - ({n} - i) * 1000",
        "updated_at": f"t.created_at - ({n} - i) * 1000 + 5000",
        "finished_at": f"t.created_at - ({n} - i) * 1000 + 5000",
        "state": "CASE i % 10 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled' ELSE 'succeeded' END",
        "model": "CASE i % 3 WHEN 0 THEN 'gen4_turbo' WHEN 1 THEN 'gen4.5' ELSE 'veo3' END",
        "channel": "CASE i % 4 WHEN 0 THEN 'backup' ELSE 'sandbox' END",
        "next_attempt_at": "NULL",
        "lease_owner": "NULL",
        "lease_until": "NULL",
    }
    select = ", ".join(over.get(col, f"t.{col}") for col in cols)
    c.execute(
        f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
            INSERT INTO tasks ({", ".join(cols)}) SELECT {select} FROM n, tasks t WHERE t.id = ?""",
        (template,),
    )
    c.commit()
    c.execute("ANALYZE")
    c.close()
    return template


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/reelay")
    ap.add_argument("--tasks", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data:
        proc, key, base = start(args.bin, data)
        r = httpx.post(
            f"{base}/v1/text_to_video",
            headers={"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06"},
            json={"model": "gen4.5", "promptText": "a lake", "ratio": "1280:720", "duration": 5},
        )
        task = r.json()["id"]
        for _ in range(100):
            if httpx.get(f"{base}/v1/tasks/{task}", headers={"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06"}).json()["status"] == "SUCCEEDED":
                break
            time.sleep(0.2)
        proc.terminate()
        proc.wait(timeout=30)
        t0 = time.time()
        seed(str(Path(data) / "reelay.db"), args.tasks)
        print(f"seeded {args.tasks} tasks in {time.time() - t0:.1f} s")
        proc, key, base = start(args.bin, data)
        c = httpx.Client(base_url=base, follow_redirects=False)
        r = c.post("/admin/sign-in", data={"token": ADMIN})
        c.cookies.set("reelay_console", r.cookies["reelay_console"], path="/admin")
        account = httpx.get(f"{base}/admin/v1/accounts", headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"][0]["id"]
        pages = {
            "overview": "/admin/",
            "tasks": "/admin/tasks",
            "tasks, state=failed": "/admin/tasks?state=failed",
            "tasks, model=veo3 channel=backup": "/admin/tasks?model=veo3&channel=backup",
            "tasks, account + dates": f"/admin/tasks?account={account}&from=2020-01-01&to=2100-01-01",
            "tasks, page 1000": "/admin/tasks?before=00000c35-0000-7000-8000-000000000c35",
            "tasks, state=queued (none)": "/admin/tasks?state=queued",
            "task": f"/admin/tasks/{task}",
            "channels": "/admin/channels",
            "accounts": "/admin/accounts",
            "account": f"/admin/accounts/{account}",
        }
        print(f"{'page':40} {'median ms':>10} {'max ms':>8}")
        for name, path in pages.items():
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                r = c.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (path, r.status_code)
            print(f"{name:40} {statistics.median(times):10.1f} {max(times):8.1f}")
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
