"""dfdetect serve: the HTTP API and the web page (uvicorn), with jobs kept in a database."""

from __future__ import annotations

import sys


def add_arguments(p) -> None:
    from ..serve.settings import ServeSettings

    d = ServeSettings()
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--data", default=str(d.data_dir), metavar="DIR",
                   help="folder for uploads, outputs and the SQLite database (default: %(default)s)")
    p.add_argument("--database", default=None, metavar="URL",
                   help="sqlite:///PATH or postgresql://user:pass@host/db (default: DIR/scans.db)")
    p.add_argument("--model", default=d.model, help="bundled model name or checkpoint path (default: %(default)s)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    p.add_argument("--frames", default=d.frames, metavar="SPEC", help="frames sampled from a video unless a request "
                   "says otherwise: N, every:K, fps:R (default: %(default)s)")
    p.add_argument("--workers", type=int, default=d.workers, help="scans run at once, each with its own copy of "
                   "the model (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest upload (default: %(default)s)")
    p.add_argument("--max-video-s", type=float, default=d.max_video_s, help="longest video (default: %(default)s)")
    p.add_argument("--max-queue", type=int, default=d.max_queue, help="videos waiting at most (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=d.max_frames, help="most frames a request may sample "
                   "(default: %(default)s)")
    p.add_argument("--keep-hours", type=float, default=d.keep_hours, help="hours outputs are kept; results stay "
                   "in the database (default: %(default)s)")
    p.add_argument("--node", default=d.node, help="this server's name among servers sharing a database "
                   "(default: the host name)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.epilog = "The bearer token, when wanted, is read from the DFDETECT_TOKEN environment variable."


def run(args) -> int:
    import logging

    import uvicorn

    from ..serve import ServeSettings, create_app

    settings = ServeSettings.from_env(
        data_dir=args.data, database=args.database, model=args.model, device=args.device, frames=args.frames,
        workers=args.workers, max_upload_mb=args.max_upload_mb, max_video_s=args.max_video_s,
        max_queue=args.max_queue, max_frames=args.max_frames, keep_hours=args.keep_hours, node=args.node)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    auth = "a bearer token (DFDETECT_TOKEN)" if settings.token else "no token: anyone who reaches it can use it"
    print(f"dfdetect serve: http://{args.host}:{args.port}/ ({auth}); data in {settings.data_dir}", file=sys.stderr)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=30)
    return 0
