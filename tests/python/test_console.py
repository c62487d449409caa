"""The operator's console in a real browser: headless Chromium (Debian's `chromium`), driven by
Playwright, against the real binary. Screenshots of each step go to
tests/python/screenshots/ (the overview's is docs/console-overview.png).

The run: sign in; see a task made through the Runway dialect reach SUCCEEDED and open it (its
events, its poster, a video that plays); cancel a running task and see it cancelled and
refunded; top up an account and see the balance move; disable a channel and see a new task go
to the other one; sign out. Without a session a page redirects to the sign-in form; a form
posted without its CSRF token is refused with 403; a prompt with markup shows as text.
"""

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import Reelay, reelay_binary

playwright = pytest.importorskip("playwright.sync_api")

SHOTS = Path(__file__).parent / "screenshots"
ADMIN_TOKEN = "admin-token-of-the-console-run"
CHROMIUM = os.environ.get("REELAY_CHROMIUM", "/usr/bin/chromium")
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNk+M9QDwAD"
    "hgGAWjR9awAAAABJRU5ErkJggg=="
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists():
        if os.environ.get("REELAY_REQUIRE_BROWSER_TESTS"):
            pytest.fail(f"no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    # A second upstream, so a disabled channel has somewhere to send new tasks.
    port = free_port()
    sim = subprocess.Popen(
        [reelay_binary(), "sim", "--listen", f"127.0.0.1:{port}", "--run-seconds", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    s = Reelay(
        {
            "REELAY_ADMIN_TOKEN": ADMIN_TOKEN,
            # Long enough to cancel a task while it runs, short enough to wait for one.
            "REELAY_SANDBOX_RUN_SECONDS": "6",
        }
    )
    admin = httpx.Client(base_url=s.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    deadline = time.time() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except httpx.TransportError:
            assert time.time() < deadline, "the simulator did not start"
            time.sleep(0.2)
    r = admin.post(
        "/admin/v1/channels",
        json={"name": "backup", "kind": "sandbox", "base_url": f"http://127.0.0.1:{port}", "priority": 200},
    )
    assert r.status_code == 201, r.text
    s.admin = admin
    yield s
    s.stop()
    sim.terminate()
    sim.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


def runway(server):
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.key}", "X-Runway-Version": "2024-11-06"},
    )


def create(server, prompt: str) -> str:
    r = runway(server).post(
        "/v1/image_to_video",
        json={"model": "gen4_turbo", "promptImage": PNG, "promptText": prompt, "ratio": "1280:720", "duration": 5},
    )
    assert r.status_code == 200, r.text
    return r.json()["id"]


def wait_js(page, expression: str, timeout: float = 20):
    """Polls `expression` in the page until it is true. (Playwright's wait_for_function evaluates
    a string in the page, which the console's CSP, script-src 'none', rightly refuses.)"""
    deadline = time.time() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.time() < deadline, f"never true: {expression}"
        time.sleep(0.1)


def shot(page, name: str):
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_console_in_a_browser(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    base = server.base_url

    # No session: to the sign-in form.
    page.goto(f"{base}/admin/tasks")
    assert page.url.endswith("/admin/sign-in")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    assert ADMIN_TOKEN not in page.url and ADMIN_TOKEN not in page.content()
    page.get_by_role("heading", name="Overview").wait_for()

    # A Runway task, with markup in its prompt, reaches SUCCEEDED; its page has its events,
    # its poster and a video that plays.
    done_id = create(server, "<script>window.pwned = 1</script> a calm lake")
    deadline = time.time() + 60
    while runway(server).get(f"/v1/tasks/{done_id}").json()["status"] != "SUCCEEDED":
        assert time.time() < deadline, "the task did not succeed"
        time.sleep(0.5)
    page.goto(f"{base}/admin/tasks")
    page.click(f"a[href='/admin/tasks/{done_id}']")
    page.get_by_role("heading", name="State history").wait_for()
    assert "succeeded" in page.inner_text("main")
    assert "<script>window.pwned = 1</script>" in page.inner_text("pre >> nth=0")
    assert page.evaluate("window.pwned") is None
    assert page.locator("img.poster").first.evaluate("i => i.complete && i.naturalWidth > 0")
    wait_js(page, "document.querySelector('video').readyState >= 1")
    assert page.evaluate("document.querySelector('video').duration") > 0
    page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.play(); }")
    wait_js(page, "document.querySelector('video').currentTime > 0")
    shot(page, "task")

    # Cancel a running task: cancelled and refunded.
    running = create(server, "to be cancelled")
    deadline = time.time() + 30
    while runway(server).get(f"/v1/tasks/{running}").json()["status"] != "RUNNING":
        assert time.time() < deadline, "the task did not start"
        time.sleep(0.2)
    page.goto(f"{base}/admin/tasks/{running}")
    page.click("text=Cancel and refund")
    page.get_by_role("status").wait_for()
    text = page.inner_text("main")
    assert "Cancelled and refunded." in text and "cancelled by operator" in text
    held = int(page.locator(".card .n").nth(1).inner_text())
    refunded = int(page.locator(".card .n").nth(3).inner_text())
    assert held > 0 and refunded == held
    shot(page, "cancelled")

    # Top up the account and see the balance move.
    page.click("main a[href^='/admin/accounts/']")
    before = int(page.inner_text("#balance"))
    page.fill("input[name=amount]", "1234")
    page.fill("input[name=reason]", "console test")
    page.click("text=Apply")
    page.get_by_role("status").wait_for()
    assert int(page.inner_text("#balance")) == before + 1234
    shot(page, "account")

    # Disable the sandbox: a new task goes to the backup channel.
    page.goto(f"{base}/admin/channels")
    page.click("button[aria-label='Disable sandbox']")
    page.get_by_role("status").wait_for()
    assert "sandbox disabled." in page.inner_text("main")
    shot(page, "channels")
    moved = create(server, "after the switch")
    deadline = time.time() + 30
    while True:
        page.goto(f"{base}/admin/tasks/{moved}")
        if "backup" in page.inner_text("table"):
            break
        assert time.time() < deadline, "the task did not go to the backup channel"
        time.sleep(0.3)
    page.goto(f"{base}/admin/channels")
    page.click("button[aria-label='Enable sandbox']")
    page.get_by_role("status").wait_for()

    # A form without its CSRF token (from another page's script) is refused.
    status = page.evaluate(
        """async () => (await fetch('/admin/channels/sandbox/switch',
               {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},
                body: 'enabled=false'})).status"""
    )
    assert status == 403

    # At a narrow width the pages still work.
    page.set_viewport_size({"width": 380, "height": 800})
    page.goto(f"{base}/admin/tasks")
    page.get_by_role("button", name="Filter").wait_for()
    shot(page, "tasks-narrow")

    # The overview after all this: the day's chart has bars.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/admin/")
    assert page.locator("svg.chart rect[height]:not([height='0'])").count() > 0
    shot(page, "overview")

    # Sign out: the session is gone.
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/admin/sign-in$"))
    page.goto(f"{base}/admin/")
    assert page.url.endswith("/admin/sign-in")
    page.close()
