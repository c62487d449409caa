"""The official `openai` SDK, unchanged but for its base URL, against reelay's `/v1/videos`."""

import base64
import json

import httpx
import openai
import pytest
from openai import OpenAI

from test_runwayml_sdk import PNG
from test_webhooks import receiver  # noqa: F401 (a fixture)

PNG_BYTES = base64.b64decode(PNG.split(",", 1)[1])

# Every `videos` method of the SDK carries OpenAI's shutdown notice; it says nothing of reelay.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


def client_for(reelay, key=None, retries=0, **kw):
    return OpenAI(api_key=key or reelay.key, base_url=reelay.base_url + "/v1", max_retries=retries, **kw)


def account(reelay, name, credits=100_000):
    return json.loads(reelay.cli("account", "create", "--name", name, "--credits", str(credits), "--json"))


def balance(reelay, key):
    r = httpx.get(
        reelay.base_url + "/v1/organization",
        headers={"Authorization": f"Bearer {key}", "X-Runway-Version": "2024-11-06"},
    )
    return r.json()["creditBalance"]


@pytest.fixture
def client(reelay):
    return client_for(reelay)


def test_create_and_poll_then_download_video_and_thumbnail(client):
    video = client.videos.create_and_poll(prompt="A calico cat playing a piano", model="sora-2", seconds="4", size="1280x720", poll_interval_ms=200)
    assert video.status == "completed", video
    assert video.id.startswith("video_") and video.object == "video"
    assert video.progress == 100 and video.seconds == "4" and video.size == "1280x720"
    assert video.model == "sora-2" and video.prompt == "A calico cat playing a piano"
    assert video.completed_at >= video.created_at and video.expires_at > video.completed_at
    assert video.error is None and video.remixed_from_video_id is None

    mp4 = client.videos.download_content(video.id).read()
    assert mp4[4:8] == b"ftyp" and len(mp4) > 1000
    thumb = client.videos.download_content(video.id, variant="thumbnail").read()
    assert thumb[:3] == b"\xff\xd8\xff" or thumb[:8] == b"\x89PNG\r\n\x1a\n"
    sheet = client.videos.download_content(video.id, variant="spritesheet").read()
    assert sheet[:3] == b"\xff\xd8\xff" and sheet != thumb
    # Asked again, the same stored sheet.
    assert client.videos.download_content(video.id, variant="spritesheet").read() == sheet

    again = client.videos.retrieve(video.id)
    assert again.id == video.id and again.status == "completed"


def test_content_is_streamed_with_range(client, reelay):
    video = client.videos.create_and_poll(prompt="range", poll_interval_ms=200)
    url = f"{reelay.base_url}/v1/videos/{video.id}/content"
    auth = {"Authorization": f"Bearer {reelay.key}"}
    full = httpx.get(url, headers=auth)
    part = httpx.get(url, headers={**auth, "Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == full.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(full.content)}"


def test_an_uploaded_input_reference_reaches_image_to_video(client):
    video = client.videos.create(
        prompt="the frame comes alive", model="gen4_turbo", size="1280x720", seconds="5",
        input_reference=("frame.png", PNG_BYTES, "image/png"),
    )
    assert video.status == "queued" and video.model == "gen4_turbo"
    done = client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed"


def test_list_pages_with_the_cursor(reelay):
    made = account(reelay, "lister")
    c = client_for(reelay, made["api_key"])
    ids = [c.videos.create(prompt=f"clip {i}").id for i in range(5)]
    page = c.videos.list(limit=2)
    assert [v.id for v in page.data] == ids[::-1][:2] and page.has_more
    # The SDK's auto-pagination walks every page.
    assert [v.id for v in c.videos.list(limit=2)] == ids[::-1]
    assert [v.id for v in c.videos.list(limit=2, order="asc")] == ids


def test_remix_and_extend_follow_a_completed_video(client, reelay):
    source = client.videos.create_and_poll(prompt="a quiet lake", poll_interval_ms=200)
    remix = client.videos.remix(source.id, prompt="the lake at night")
    assert remix.remixed_from_video_id == source.id and remix.id != source.id
    assert remix.size == source.size and remix.seconds == source.seconds
    assert client.videos.poll(remix.id, poll_interval_ms=200).status == "completed"

    # The SDK uploads the clip to extend as a file: reelay continues from its last frame.
    clip = client.videos.download_content(source.id).read()
    ext = client.videos.extend(prompt="the camera rises", seconds="4", video=("clip.mp4", clip, "video/mp4"))
    assert ext.status == "queued" and ext.seconds == "4"
    assert client.videos.poll(ext.id, poll_interval_ms=200).status == "completed"

    # `video[id]` (the object form, as other clients send it) continues a video of ours.
    r = httpx.post(
        f"{reelay.base_url}/v1/videos/extensions",
        headers={"Authorization": f"Bearer {reelay.key}"},
        files={"prompt": (None, "and further"), "seconds": (None, "4"), "video[id]": (None, source.id)},
    )
    assert r.status_code == 200, r.text
    by_id = r.json()
    assert by_id["size"] == source.size and by_id["model"] == source.model
    assert client.videos.poll(by_id["id"], poll_interval_ms=200).status == "completed"


def test_delete(client):
    video = client.videos.create_and_poll(prompt="to delete", poll_interval_ms=200)
    gone = client.videos.delete(video.id)
    assert gone.id == video.id and gone.deleted is True and gone.object == "video.deleted"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_typed_errors_name_the_param_and_refusals_move_no_credit(reelay):
    made = account(reelay, "errors", credits=1000)
    c = client_for(reelay, made["api_key"])
    before = balance(reelay, made["api_key"])
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="x", model="sora-2", seconds="12")
    assert err.value.param == "seconds" and "'4', '6', '8'" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="x", size="1024x1792")
    assert err.value.param == "size" and "1280x720" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="x", model="no-such-model")
    assert err.value.param == "model"
    with pytest.raises(openai.BadRequestError) as err:
        c.videos.create(prompt="x", input_reference=("a.gif", b"GIF89a....", "image/gif"), model="gen4_turbo")
    assert err.value.param == "input_reference"
    with pytest.raises(openai.NotFoundError):
        c.videos.retrieve("video_" + "0" * 32)
    with pytest.raises(openai.AuthenticationError):
        client_for(reelay, "key_" + "0" * 128).videos.list()
    assert balance(reelay, made["api_key"]) == before

    poor = account(reelay, "poor-openai", credits=1)
    with pytest.raises(openai.RateLimitError) as err:
        client_for(reelay, poor["api_key"], retries=2).videos.create(prompt="x")
    assert err.value.code == "insufficient_quota"
    assert balance(reelay, poor["api_key"]) == 1


def test_rate_limit_reaches_the_sdk_as_rate_limit_error(reelay):
    made = account(reelay, "busy")
    reelay.cli("account", "set", made["account_id"], "--max-active-tasks", "1")
    c = client_for(reelay, made["api_key"])
    c.videos.create(prompt="first")
    with pytest.raises(openai.RateLimitError) as err:
        c.videos.create(prompt="second")
    assert err.value.response.headers.get("retry-after")


def test_another_accounts_video_is_not_found_anywhere(reelay, client):
    video = client.videos.create_and_poll(prompt="mine", poll_interval_ms=200)
    other = client_for(reelay, account(reelay, "stranger")["api_key"])
    for call in (
        lambda: other.videos.retrieve(video.id),
        lambda: other.videos.delete(video.id),
        lambda: other.videos.download_content(video.id),
        lambda: other.videos.remix(video.id, prompt="stolen"),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    r = httpx.post(
        f"{reelay.base_url}/v1/videos/extensions",
        headers={"Authorization": f"Bearer {other.api_key}"},
        files={"prompt": (None, "stolen"), "video[id]": (None, video.id)},
    )
    assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    assert video.id not in [v.id for v in other.videos.list()]


def test_idempotency_key(client):
    h = {"Idempotency-Key": "openai-order-7"}
    first = client.videos.create(prompt="same", extra_headers=h)
    assert client.videos.create(prompt="same", extra_headers=h).id == first.id
    with pytest.raises(openai.UnprocessableEntityError):
        client.videos.create(prompt="different", extra_headers=h)


def test_webhooks_unwrap_a_video_completed_event(reelay, receiver):
    url, got = receiver
    made = account(reelay, "openai-hooks")
    reelay.cli("webhook", "url", "--account", made["account_id"], "--url", url)
    c = client_for(reelay, made["api_key"], webhook_secret=made["webhook_secret"])
    video = c.videos.create_and_poll(prompt="signed", poll_interval_ms=200)
    headers, body = got.get(timeout=30)
    event = c.webhooks.unwrap(body, headers)
    assert event.type == "video.completed" and event.data.id == video.id
    assert event.id.startswith("evt_")
    # A forged body does not verify.
    with pytest.raises(Exception):
        c.webhooks.unwrap(body.replace(b"video.completed", b"video.failed"), headers)
