"""`dfdetect serve` over a real socket: uvicorn started as a user starts it, real clips and photos, the
SQLite file on disk. Endpoints, auth, bad uploads, limits, and a server killed with SIGKILL mid-queue."""

from __future__ import annotations

import io
import re
import sqlite3
import time
import zipfile
from pathlib import Path

import pytest
import requests
from conftest import ServerProcess

pytestmark = pytest.mark.slow
TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("serve"), "--frames", "4", "--max-upload-mb", "1",
                        "--max-video-s", "60", "--max-frames", "50").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def photo(shared_data) -> Path:
    return sorted((shared_data / "real-faces" / "faces").glob("*.jpg"))[0]


def _post(url: str, path: Path | None = None, name: str | None = None, data: bytes | None = None, token=None, **fields):
    files = {"file": (name or path.name, data if data is not None else path.read_bytes())}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(url + "/v1/scans", files=files, data=fields, headers=headers, timeout=300)


def _wait_done(url: str, scan_id: str, timeout: float = 300, headers=None) -> tuple[dict, list[float]]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = requests.get(f"{url}/v1/scans/{scan_id}", headers=headers, timeout=30).json()
        seen.append(job["progress"])
        if job["status"] in ("done", "failed"):
            return job, seen
        time.sleep(0.3)
    raise AssertionError(f"scan {scan_id} not done in {timeout} s: {job}")


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"] and "\n" not in body["error"]["message"]
    return body["error"]["message"]


def test_an_image_is_answered_at_once_with_the_result_of_the_cli(server, photo, tmp_path):
    from dfdetect.cli import main
    from dfdetect.results import read_json

    response = _post(server.url, photo)
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "done" and job["kind"] == "image" and job["filename"] == photo.name
    assert main(["scan", str(photo), "--device", "cpu", "--quiet", "--json", str(tmp_path / "cli.json")]) == 0
    cli = read_json(tmp_path / "cli.json")[0]
    result = job["result"]
    assert result["path"] == photo.name  # the client's name, not where the server kept the file
    assert result["verdict"] == cli.verdict and result["probability"] == pytest.approx(cli.probability, abs=1e-6)
    assert [f["box"] for t in result["tracks"] for f in t["faces"]] == \
        [f.box.model_dump() for t in cli.tracks for f in t.faces]
    assert requests.get(server.url + job["url"], timeout=30).json()["result"] == result
    # the faces looked at, with heat maps, an annotated copy, and all the faces in one zip
    assert len(job["faces"]) == len(cli.tracks) >= 1
    for face in job["faces"]:
        for key in ("crop", "heatmap"):
            png = requests.get(server.url + face[key], timeout=30)
            assert png.ok and png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    annotated = requests.get(server.url + job["files"]["annotated"], timeout=30)
    assert annotated.ok and annotated.content.startswith(b"\x89PNG")
    archive = zipfile.ZipFile(io.BytesIO(requests.get(server.url + job["files"]["faces_zip"], timeout=30).content))
    assert len(archive.namelist()) == 2 * len(job["faces"])
    assert not list((server.data_dir / "uploads").glob("*"))  # the upload is deleted once scanned


def test_concurrent_image_scans_each_get_their_own_result(server, shared_data):
    """Images are answered in their requests, never taken by the video workers meanwhile."""
    from concurrent.futures import ThreadPoolExecutor

    photos = sorted((shared_data / "real-faces" / "faces").glob("*.jpg"))[1:9]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda p: _post(server.url, p), photos))
    assert [a.status_code for a in answers] == [200] * len(photos)
    jobs = [a.json() for a in answers]
    assert all(j["status"] == "done" and j["result"]["verdict"] in ("fake", "real", "no_face") for j in jobs)
    assert [j["filename"] for j in jobs] == [p.name for p in photos] and len({j["id"] for j in jobs}) == len(photos)


def test_a_video_is_a_job_with_progress_an_annotated_copy_and_heat_maps(server, ffpp_clips):
    import av

    clip = ffpp_clips["fake"][0]
    response = _post(server.url, clip)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == response.json()["url"]
    assert response.json()["status"] in ("queued", "running")
    job, progress = _wait_done(server.url, response.json()["id"])
    assert job["status"] == "done", job
    assert progress == sorted(progress) and progress[-1] == 1.0
    result = job["result"]
    assert result["verdict"] in ("fake", "real") and result["frames_sampled"] == 4
    assert result["media"]["kind"] == "video" and 0 <= result["probability"] <= 1
    assert {f["track_id"] for f in job["faces"]} == {t["track_id"] for t in result["tracks"]}
    video = requests.get(server.url + job["files"]["annotated"], timeout=60)
    assert video.ok and video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as annotated, av.open(str(clip)) as source:
        assert sum(1 for _ in annotated.decode(video=0)) == sum(1 for _ in source.decode(video=0))
    assert requests.get(server.url + job["files"]["timeline"], timeout=30).content.startswith(b"\x89PNG")
    # explicit frames for one request
    one = _post(server.url, ffpp_clips["real"][0], frames="2", annotate="false").json()
    done, _ = _wait_done(server.url, one["id"])
    assert done["result"]["frames_sampled"] == 2 and "annotated" not in done["files"]


def test_bad_uploads_each_get_one_clear_json_error_and_the_server_goes_on(server, ffpp_clips, dfdc_videos, photo):
    clip = ffpp_clips["real"][0]
    assert "looks like text" in _error(_post(server.url, name="clip.mp4", data=b"this is not a video\n" * 40), 415,
                                       "unsupported_type")
    assert "truncated" in _error(_post(server.url, name="cut.mp4", data=clip.read_bytes()[:20_000]), 422,
                                 "unreadable_media")
    assert "1 MB" in _error(_post(server.url, dfdc_videos[0]), 413, "too_large")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("face.jpg", photo.read_bytes())
    _error(_post(server.url, name="face.jpg", data=archive.getvalue()), 415, "unsupported_type")
    assert "empty" in _error(_post(server.url, name="empty.mp4", data=b""), 400, "empty_file")
    _error(_post(server.url, name="cut.jpg", data=photo.read_bytes()[:3000]), 422, "unreadable_media")
    _error(requests.post(server.url + "/v1/scans", files={"notes": ("a.txt", b"x")}, data={"frames": "4"}, timeout=30),
           400, "no_file")
    _error(requests.post(server.url + "/v1/scans", data=b"raw", timeout=30), 415, "not_multipart")
    _error(_post(server.url, clip, frames="twelve"), 400, "bad_option")
    assert "at most 50" in _error(_post(server.url, clip, frames="all"), 422, "too_many_frames")
    _error(requests.get(server.url + "/v1/scans/0123456789abcdef0123456789abcdef", timeout=30), 404, "not_found")
    _error(requests.get(server.url + "/v1/scans/../../etc/passwd", timeout=30), 404, "not_found")
    assert not list((server.data_dir / "uploads").glob("*"))  # nothing refused is kept
    assert requests.get(server.url + "/v1/health", timeout=30).json()["status"] == "ok"
    assert _post(server.url, photo).status_code == 200


def test_health_models_and_docs_work_without_a_network(server):
    health = requests.get(server.url + "/v1/health", timeout=30).json()
    assert health["status"] == "ok" and health["auth"] is False and health["limits"]["max_upload_mb"] == 1
    models = requests.get(server.url + "/v1/models", timeout=30).json()
    assert models["loaded"]["arch"] and 0 < models["loaded"]["threshold"] < 1 and "default" in models["bundled"]
    spec = requests.get(server.url + "/openapi.json", timeout=30).json()
    assert {"/v1/scans", "/v1/scans/{scan_id}", "/v1/health", "/v1/models"} <= set(spec["paths"])
    docs = requests.get(server.url + "/docs", timeout=30).text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "http" not in docs.split("<script")[1].split(">")[0]
    assert requests.get(server.url + "/docs-assets/swagger-ui-bundle.js", timeout=30).ok
    page = requests.get(server.url + "/", timeout=30).text
    assert "/static/app.js" in page and "/static/style.css" in page and "//" not in page
    for asset in ("/static/app.js", "/static/style.css"):  # everything the page uses comes from this server
        text = requests.get(server.url + asset, timeout=30).text
        assert text and not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), asset


def test_a_token_guards_the_api_when_set(tmp_path, photo):
    srv = ServerProcess(tmp_path / "auth", "--frames", "2", token=TOKEN).start()
    try:
        assert requests.get(srv.url + "/v1/health", timeout=30).json()["auth"] is True  # health stays open
        refused = _post(srv.url, photo)
        _error(refused, 401, "unauthorised")
        assert refused.headers["www-authenticate"] == "Bearer"
        _error(_post(srv.url, photo, token="wrong"), 401, "unauthorised")
        _error(requests.get(srv.url + "/v1/models", timeout=30), 401, "unauthorised")
        job = _post(srv.url, photo, token=TOKEN)
        assert job.status_code == 200, job.text
        scan_url = srv.url + job.json()["url"]
        _error(requests.get(scan_url, timeout=30), 401, "unauthorised")
        _error(requests.get(srv.url + job.json()["faces"][0]["heatmap"], timeout=30), 401, "unauthorised")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert requests.get(scan_url, headers=auth, timeout=30).json()["status"] == "done"
        assert requests.get(srv.url + job.json()["faces"][0]["heatmap"], headers=auth, timeout=30).ok
    finally:
        srv.stop()


def test_a_server_killed_mid_queue_finishes_the_jobs_after_restart_without_duplicates(tmp_path, ffpp_clips):
    data = tmp_path / "restart"
    srv = ServerProcess(data, "--frames", "4", "--workers", "1", "--max-queue", "3").start()
    clips = ffpp_clips["real"][:3] + ffpp_clips["fake"][:3]
    ids, refused = [], 0
    for clip in clips:
        response = _post(srv.url, clip)
        if response.status_code == 503:
            _error(response, 503, "queue_full")
            assert response.headers["retry-after"]
            refused += 1
        else:
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    assert refused >= 1 and len(ids) >= 3  # one running, three queued, the rest refused
    srv.kill()
    with sqlite3.connect(data / "scans.db") as db:
        before = dict(db.execute("SELECT id, status FROM scans").fetchall())
    assert set(before) == set(ids) and {"queued", "running"} <= set(before.values())  # killed mid-job, mid-queue
    srv = ServerProcess(data, "--frames", "4", "--workers", "1").start()
    try:
        jobs = [_wait_done(srv.url, scan_id)[0] for scan_id in ids]
    finally:
        srv.stop()
    assert all(job["status"] == "done" and job["result"]["verdict"] in ("fake", "real") for job in jobs), jobs
    assert sorted(job["filename"] for job in jobs) == sorted(c.name for c in clips[:len(ids)])
    with sqlite3.connect(data / "scans.db") as db:
        rows = db.execute("SELECT id, status, attempt, result IS NOT NULL FROM scans").fetchall()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(rows) == len(ids) and {r[0] for r in rows} == set(ids)
    assert all(status == "done" and has_result for _, status, _, has_result in rows)
    assert max(attempt for *_, attempt, _ in rows) <= 2  # the one that was running ran once more, no more
    assert not list((data / "uploads").glob("*"))


def test_a_postgresql_database_works_the_same(tmp_path, postgres_url, photo, ffpp_clips):
    import psycopg

    srv = ServerProcess(tmp_path / "pg", "--frames", "2", "--database", postgres_url).start()
    try:
        image = _post(srv.url, photo)
        assert image.status_code == 200 and image.json()["result"]["verdict"] in ("fake", "real")
        video = _post(srv.url, ffpp_clips["fake"][1], annotate="false")
        job, _ = _wait_done(srv.url, video.json()["id"])
        assert job["status"] == "done" and job["result"]["frames_sampled"] == 2
    finally:
        srv.stop()
    with psycopg.connect(postgres_url) as db:
        rows = dict(db.execute("SELECT id, status FROM scans WHERE id IN (%s, %s)",
                               (image.json()["id"], job["id"])).fetchall())
    assert rows == {image.json()["id"]: "done", job["id"]: "done"}
    assert not (tmp_path / "pg" / "scans.db").exists()
