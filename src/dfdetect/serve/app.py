"""The HTTP API and the web page of `dfdetect serve` (FastAPI).

    POST /v1/scans                    upload an image (answered at once) or a video (a queued job, 202)
    GET  /v1/scans/{id}               status, progress, the result (the schema of `scan --json`), the faces
    GET  /v1/scans/{id}/files/{name}  the annotated copy, face crops, heat maps, the timeline
    GET  /v1/scans/{id}/faces.zip     every face crop and heat map of a scan
    GET  /v1/health, /v1/models       liveness and queue; the model and its card
    GET  /                            the page; /docs and /openapi.json describe the API

Every error is one JSON object `{"error": {"code": ..., "message": ...}}` with the status that fits.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
import uuid
import zipfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .jobs import DetectorPool, ScanService
from .settings import ServeSettings
from .store import Job, JobStore
from .uploads import ApiError, receive_upload

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(png|mp4|json)$")
UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "a video or an image"},
        "frames": {"type": "string", "description": "video frames to sample: N, every:K, fps:R (default: the server's)"},
        "annotate": {"type": "boolean", "description": "write an annotated copy (default true)"}}}}}}}


def create_app(settings: ServeSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = JobStore(settings.database_url)
        pool = await run_in_threadpool(DetectorPool, settings)
        service = ScanService(settings, store, pool)
        service.start()
        app.state.store, app.state.pool, app.state.service = store, pool, service
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)
            store.close()

    app = FastAPI(title="dfdetect", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Face-manipulation deepfake detection: upload a video or an image, get the verdict, "
                              "the calibrated probability, each person's scores and where the model looked.")
    app.state.settings = settings
    _add_error_handlers(app)
    _add_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    authorised = [Depends(_require_token)]

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/v1/health", summary="Liveness, queue and limits (no token needed)")
    def health(request: Request):
        store: JobStore = request.app.state.store
        return {"status": "ok", "version": __version__, "model": request.app.state.pool.card.name,
                "auth": bool(settings.token), "workers": settings.workers,
                "queue": {"queued": store.count("queued"), "running": store.count("running")},
                "limits": {"max_upload_mb": settings.max_upload_mb, "max_video_s": settings.max_video_s,
                           "max_queue": settings.max_queue, "max_frames": settings.max_frames}}

    @app.get("/v1/models", summary="The loaded model's card and the bundled models", dependencies=authorised)
    def models(request: Request):
        from ..models import NAMED_MODELS

        card = request.app.state.pool.card
        return {"loaded": card.model_dump(mode="json", exclude={"training"}), "bundled": sorted(NAMED_MODELS)}

    @app.post("/v1/scans", summary="Scan an uploaded video or image", dependencies=authorised,
              openapi_extra=UPLOAD_SCHEMA, status_code=202,
              responses={200: {"description": "an image, scanned"}, 202: {"description": "a video, queued"}})
    async def create_scan(request: Request):
        service: ScanService = request.app.state.service
        upload = await receive_upload(request, settings, service.uploads_dir)
        if upload.kind == "video":  # images are not queued: they are scanned in their request
            try:
                _check_queue(service)
            except ApiError:
                upload.path.unlink(missing_ok=True)
                raise
        job_id = uuid.uuid4().hex
        if upload.kind == "video":
            job = service.store.create(job_id, upload.kind, upload.filename, upload.path.name, upload.options)
            service.wake()
            return JSONResponse(record(job), status_code=202, headers={"Location": f"/v1/scans/{job_id}"})
        job = await run_in_threadpool(service.scan_now, job_id, upload)
        if job.status == "failed":
            raise ApiError(422, "unreadable_media", f"{job.filename}: {job.error}")
        return JSONResponse(record(job), status_code=200, headers={"Location": f"/v1/scans/{job_id}"})

    @app.get("/v1/scans/{scan_id}", summary="A scan's status, progress and result", dependencies=authorised)
    def get_scan(scan_id: str, request: Request):
        return record(_job(request, scan_id))

    @app.get("/v1/scans/{scan_id}/files/{name}", summary="A file of a scan", dependencies=authorised)
    def get_file(scan_id: str, name: str, request: Request):
        job = _job(request, scan_id)
        folder = request.app.state.service.outputs_dir / job.id
        if not SAFE_NAME.match(name) or not (folder / name).is_file():
            raise ApiError(410 if job.files_removed else 404, "no_such_file",
                           f"scan {scan_id} has no file {name!r}" + (" any more (old files are removed)"
                                                                    if job.files_removed else ""))
        return FileResponse(folder / name)

    @app.get("/v1/scans/{scan_id}/faces.zip", summary="The face crops and heat maps of a scan",
             dependencies=authorised)
    def faces_zip(scan_id: str, request: Request):
        job = _job(request, scan_id)
        folder = request.app.state.service.outputs_dir / job.id
        faces = (job.explanation or {}).get("faces", [])
        if job.files_removed or not faces:
            raise ApiError(410 if job.files_removed else 404, "no_faces", f"scan {scan_id} has no face crops")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
            for face in faces:
                for name in (face["crop"], face["heatmap"]):
                    zf.write(folder / name, name)
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{scan_id}_faces.zip"'})

    return app


def record(job: Job) -> dict:
    """What the API says about a scan."""
    base = f"/v1/scans/{job.id}"
    explanation = job.explanation or {}
    files = {} if job.files_removed else {k: f"{base}/files/{v}" for k, v in explanation.get("files", {}).items()}
    faces = [] if job.files_removed else [
        {**f, "crop": f"{base}/files/{f['crop']}", "heatmap": f"{base}/files/{f['heatmap']}"}
        for f in explanation.get("faces", [])]
    if faces:
        files["faces_zip"] = f"{base}/faces.zip"
    return {"id": job.id, "kind": job.kind, "filename": job.filename, "status": job.status,
            "progress": job.progress, "stage": job.stage, "created": job.created, "started": job.started,
            "finished": job.finished, "error": job.error, "options": job.options, "result": job.result,
            "faces": faces, "files": files, "files_removed": job.files_removed,
            "problems": explanation.get("problems", []), "url": base}


def _job(request: Request, scan_id: str) -> Job:
    job = request.app.state.store.get(scan_id) if re.fullmatch(r"[0-9a-f]{32}", scan_id) else None
    if job is None:
        raise ApiError(404, "not_found", f"no scan {scan_id!r}")
    return job


def _check_queue(service: ScanService) -> None:
    queued = service.store.count("queued")
    if queued >= service.settings.max_queue:
        raise ApiError(503, "queue_full", f"{queued} videos are waiting, the most this server queues; try again later",
                       headers={"Retry-After": "30"})


def _require_token(request: Request) -> None:
    token = request.app.state.settings.token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorised", "this server needs 'Authorization: Bearer <token>'",
                       headers={"WWW-Authenticate": "Bearer"})


def _add_error_handlers(app: FastAPI) -> None:
    def error(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail),
                     getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        return error(400, "bad_request", f"{'.'.join(map(str, first.get('loc', [])))}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def internal_error(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error(500, "internal_error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def _add_docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-bundle package, so the docs work with no internet."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="dfdetect API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")
