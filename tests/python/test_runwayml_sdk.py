"""The official `runwayml` SDK, unchanged but for its base URL, against reelay."""

import base64
import json

import httpx
import pytest
import runwayml
from runwayml import RunwayML

# A real 1×1 PNG as a data URI, so the test needs no network.
PNG = "data:image/png;base64," + base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6364f8ff9f0100050101007d0e2fd60000000049454e44ae426082"
    )
).decode()


@pytest.fixture
def client(reelay):
    return RunwayML(api_key=reelay.key, base_url=reelay.base_url, max_retries=0)


def test_image_to_video_wait_and_download(client):
    task = client.image_to_video.create(
        model="gen4_turbo",
        prompt_image=PNG,
        prompt_text="A bunny eating a carrot, slow dolly-in",
        ratio="1280:720",
        duration=5,
    ).wait_for_task_output(timeout=120)
    assert task.status == "SUCCEEDED"
    assert len(task.output) == 1
    video = httpx.get(task.output[0])
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    # An MP4 starts with an `ftyp` box.
    assert video.content[4:8] == b"ftyp"
    assert len(video.content) > 1000


def test_text_to_image_with_the_sdk(client):
    task = client.text_to_image.create(
        model="gen4_image", prompt_text="a lighthouse at dusk", ratio="1920:1080"
    ).wait_for_task_output(timeout=120)
    assert task.status == "SUCCEEDED"
    image = httpx.get(task.output[0])
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation_error_reaches_the_sdk_as_bad_request(client):
    with pytest.raises(runwayml.BadRequestError) as err:
        client.image_to_video.create(model="gen4_turbo", prompt_image=PNG, ratio="1:1")
    body = err.value.body
    assert body["error"] == "Validation of body failed"
    assert body["issues"][0]["path"] == ["ratio"]


def test_unknown_task_and_bad_key(client, reelay):
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve("01a20896-0000-7000-8000-000000000000")
    bad = RunwayML(api_key="key_" + "0" * 128, base_url=reelay.base_url, max_retries=0)
    with pytest.raises(runwayml.AuthenticationError):
        bad.organization.retrieve()


def test_cancel_and_organization(client):
    created = client.text_to_video.create(
        model="veo3.1_fast", prompt_text="waves", ratio="1280:720", duration=4
    )
    client.tasks.delete(created.id)
    with pytest.raises(runwayml.NotFoundError):
        client.tasks.retrieve(created.id)
    org = client.organization.retrieve()
    assert org.credit_balance >= 0
    assert "gen4_turbo" in org.tier.models


def test_short_credits_reach_the_sdk_as_402_and_nothing_is_charged(reelay):
    made = json.loads(reelay.cli("account", "create", "--name", "poor", "--credits", "3", "--json"))
    poor = RunwayML(api_key=made["api_key"], base_url=reelay.base_url, max_retries=2)
    with pytest.raises(runwayml.APIStatusError) as err:
        poor.image_to_video.create(
            model="gen4_turbo", prompt_image=PNG, prompt_text="x", ratio="1280:720", duration=5
        )
    assert err.value.status_code == 402
    assert err.value.body["error"] == "You do not have enough credits to run this task."
    assert poor.organization.retrieve().credit_balance == 3


def test_idempotency_key_through_the_sdk(client):
    def create(prompt):
        return client.image_to_video.create(
            model="gen4_turbo",
            prompt_image=PNG,
            prompt_text=prompt,
            ratio="1280:720",
            duration=5,
            extra_headers={"Idempotency-Key": "sdk-order-42"},
        )

    first = create("same")
    assert create("same").id == first.id
    with pytest.raises(runwayml.UnprocessableEntityError):
        create("another prompt")


def test_uploads_create_ephemeral_then_image_to_video(reelay):
    """A local file through `uploads.create_ephemeral`, then its runway:// URI in a task: the
    upstream (the sandbox simulator) gets the image's bytes; another account's URI is refused."""
    made = json.loads(reelay.cli("account", "create", "--name", "uploader", "--credits", "1000", "--json"))
    client = RunwayML(api_key=made["api_key"], base_url=reelay.base_url, max_retries=0)
    png = base64.b64decode(PNG.split(",", 1)[1])
    upload = client.uploads.create_ephemeral(file=("frame.png", png, "image/png"))
    assert upload.uri.startswith("runway://")
    task = client.image_to_video.create(
        model="gen4_turbo", prompt_image=upload.uri, prompt_text="from an upload", ratio="1280:720", duration=5
    ).wait_for_task_output(timeout=120)
    assert task.status == "SUCCEEDED"

    # The task names the upload (its bytes reach the upstream at submit: crates/cli/tests/it/uploads.rs).
    detail = json.loads(reelay.cli("task", "show", task.id))
    assert detail["task"]["spec"]["input"]["promptImage"] == upload.uri

    stranger = json.loads(reelay.cli("account", "create", "--name", "stranger-up", "--credits", "1000", "--json"))
    other = RunwayML(api_key=stranger["api_key"], base_url=reelay.base_url, max_retries=0)
    with pytest.raises(runwayml.BadRequestError) as err:
        other.image_to_video.create(model="gen4_turbo", prompt_image=upload.uri, ratio="1280:720")
    assert err.value.body["issues"][0]["path"] == ["promptImage"]
    assert "runway://" in err.value.body["issues"][0]["message"]

    # A slot is single-use and signed: a forged or replayed form POST is refused.
    slot = httpx.post(
        reelay.base_url + "/v1/uploads",
        headers={"Authorization": f"Bearer {made['api_key']}", "X-Runway-Version": "2024-11-06"},
        json={"filename": "x.png", "type": "ephemeral"},
    ).json()
    forged = dict(slot["fields"], account=stranger["account_id"])
    assert httpx.post(slot["uploadUrl"], data=forged, files={"file": ("x.png", png)}).status_code == 403
    assert httpx.post(slot["uploadUrl"], data=slot["fields"], files={"file": ("x.png", png)}).status_code == 204
    assert httpx.post(slot["uploadUrl"], data=slot["fields"], files={"file": ("x.png", png)}).status_code == 409
    assert httpx.post(slot["uploadUrl"], data=slot["fields"], files={"file": ("x.txt", b"hello")}).status_code in (400, 409)
