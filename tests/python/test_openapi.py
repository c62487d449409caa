"""schemathesis against every OpenAPI document reelay serves, on the live server.

For each of /openapi/{runway,reverse,quickstart,openai,admin}.json, schemathesis generates
requests from the document (valid and invalid ones, and sequences that follow its links: create
a task, then read and cancel it) and checks every answer: no 5xx, a status the document lists,
a body that matches the schema of that status, the content type it names. Any finding fails the
test with schemathesis's report (and a curl line reproducing it).

The seed is fixed so that CI is repeatable; to dig deeper locally:
    SCHEMATHESIS_EXAMPLES=300 SCHEMATHESIS_SEED=$RANDOM pytest tests/python/test_openapi.py
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conftest import Reelay

DOCUMENTS = ["runway", "reverse", "quickstart", "openai", "admin"]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "response_schema_conformance",
        "content_type_conformance",
    ]
)
ADMIN_TOKEN = "admin-token-of-the-schemathesis-run"


def schemathesis() -> str:
    found = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    if not Path(found).exists():
        raise RuntimeError("schemathesis is not installed: pip install -r tests/python/requirements.txt")
    return found


@pytest.fixture(scope="module")
def server():
    # No per-key rate limit, so the run reaches the handlers instead of 429s; the admin run
    # comes last (it adds channels and accounts the dialect runs need not see).
    s = Reelay(
        {
            "REELAY_LIMITS__REQUESTS_PER_SECOND": "0",
            "REELAY_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
    yield s
    s.stop()


def test_every_document_is_openapi_3_1_and_public(server):
    for name in DOCUMENTS:
        with urllib.request.urlopen(f"{server.base_url}/openapi/{name}.json") as resp:
            assert resp.headers["content-type"] == "application/json"
            doc = json.load(resp)
        assert doc["openapi"] == "3.1.0", name
        assert doc["paths"], name
        # Every reference resolves.
        text = json.dumps(doc)
        schemas = doc["components"]["schemas"]
        for ref in set(part.split('"')[0] for part in text.split("#/components/schemas/")[1:]):
            assert ref in schemas, f"{name}: dangling $ref {ref}"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_schemathesis_finds_nothing(server, name):
    token = ADMIN_TOKEN if name == "admin" else server.key
    with tempfile.TemporaryDirectory() as cwd:
        run = subprocess.run(
            [
                schemathesis(),
                "run",
                f"{server.base_url}/openapi/{name}.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                CHECKS,
                "--max-examples",
                os.environ.get("SCHEMATHESIS_EXAMPLES", "30"),
                "--seed",
                os.environ.get("SCHEMATHESIS_SEED", "1"),
                "--no-color",
            ],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=900,
        )
    report = run.stdout[-20000:] + run.stderr[-5000:]
    assert run.returncode == 0, report
    assert " passed" in run.stdout and "generated" in run.stdout, report
