"""``lab-ci serve``: the GitHub App webhook service and its job workers.

One process serves HTTP (uvicorn + Starlette) and runs ``--workers N`` job worker
threads, started and stopped by the app's lifespan (SIGTERM/SIGINT: uvicorn stops
accepting, the workers finish or give back their jobs, exit 0). ``--no-workers`` serves
HTTP only; ``--worker-only`` runs workers without HTTP (scale job throughput with more
such processes on the same queue file; the file must be on a local disk).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import threading
from pathlib import Path

from ..errors import LabCIError
from .logs import configure_json_logging
from .queue import SQLiteQueue
from .settings import Settings


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="run the GitHub App webhook service and its job workers",
        description="Run the GitHub App webhook service (POST /webhook, GET /healthz, GET /metrics) "
        "and its durable job workers. Secrets come from the environment: LAB_CI_WEBHOOK_SECRET, "
        "LAB_CI_APP_ID, LAB_CI_PRIVATE_KEY or LAB_CI_PRIVATE_KEY_PATH.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--workers", type=int, default=None, help="job worker threads (default $LAB_CI_WORKERS or 2)")
    p.add_argument("--db", type=Path, default=None, help="SQLite queue file (default $LAB_CI_DB or DATA_DIR/queue.db)")
    p.add_argument("--data-dir", type=Path, default=None, help="mirrors, caches, queue (default $LAB_CI_DATA_DIR)")
    p.add_argument("--github-api-url", default=None, help="GitHub REST API root (default $LAB_CI_GITHUB_API_URL)")
    p.add_argument("--lease-seconds", type=float, default=None, help="job lease, renewed while running (default 60)")
    p.add_argument("--max-body-bytes", type=int, default=None, help="largest webhook body accepted (default 25 MiB)")
    p.add_argument(
        "--max-delivery-age",
        type=float,
        default=None,
        help="reject deliveries whose signed event time is older, in seconds (default 0 = off)",
    )
    p.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds running jobs get on shutdown")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-workers", action="store_true", help="serve HTTP only (workers run elsewhere)")
    mode.add_argument("--worker-only", action="store_true", help="run job workers only, no HTTP server")
    p.add_argument(
        "--insecure-no-signature",
        action="store_true",
        help="serve on a non-loopback address WITHOUT a webhook secret (anyone who can reach the "
        "port can forge deliveries; only behind a proxy that verifies signatures)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)
    return p


def _settings(args):
    return Settings.from_env(
        workers=0 if args.no_workers else args.workers,
        db_path=args.db,
        data_dir=args.data_dir,
        github_api_url=args.github_api_url,
        lease_seconds=args.lease_seconds,
        max_body_bytes=args.max_body_bytes,
        max_delivery_age=args.max_delivery_age,
    )


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0-like wildcard: reachable from elsewhere


def check_webhook_secret(secret: bytes | None, host: str, *, insecure: bool, http: bool = True) -> None:
    """Refuse to accept unsigned deliveries from the network (pure; raises LabCIError)."""
    if secret or not http or insecure or is_loopback(host):
        return
    raise LabCIError(
        f"LAB_CI_WEBHOOK_SECRET is not set and --host {host} is reachable from other machines: "
        "anyone could forge webhook deliveries. Set LAB_CI_WEBHOOK_SECRET (the App's webhook secret), "
        "listen on 127.0.0.1, or pass --insecure-no-signature if a proxy in front verifies signatures"
    )


def build_worker(settings, queue, metrics, *, router=None, runner=None):
    """The production worker: the services built from the settings (GitHub App client,
    approval store, mirrors) and the handlers of :mod:`lab_ci.bot.handlers`."""
    # the web stack (PyGithub, prometheus_client): imported only when serving
    from .services import build_services
    from .worker import Worker

    services = build_services(settings, queue, metrics)
    return Worker(queue, services, router=router, runner=runner)


def run(args) -> int:
    try:  # the web stack (uvicorn, Starlette, PyGithub, prometheus_client): only to serve
        import uvicorn  # noqa: F401

        from .app import create_app
        from .metrics import Metrics
    except ImportError as e:
        raise LabCIError(f"lab-ci serve needs the bot extra: pip install 'lab-ci[bot]' ({e})") from None

    settings = _settings(args)
    check_webhook_secret(
        settings.webhook_secret, args.host, insecure=args.insecure_no_signature, http=not args.worker_only
    )
    level = getattr(logging, args.log_level.upper())
    configure_json_logging(level)
    if settings.webhook_secret is None and not args.worker_only:
        logging.getLogger("lab_ci.bot").warning(
            "LAB_CI_WEBHOOK_SECRET is not set: webhook signatures are NOT verified (local use only)"
        )
    try:
        queue = SQLiteQueue(settings.queue_path, synchronous=settings.db_synchronous)
    except Exception as e:
        raise LabCIError(f"cannot open the queue database {settings.queue_path}: {e}") from None
    metrics = Metrics()
    worker = build_worker(settings, queue, metrics) if settings.workers > 0 else None
    if worker is not None:
        worker.grace = args.shutdown_grace

    if args.worker_only:
        return _run_worker_only(worker)

    import uvicorn

    app = create_app(settings, queue, metrics=metrics, worker=worker)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep our JSON handlers
        access_log=False,  # one structured line per delivery is logged by the app instead
        lifespan="on",
        timeout_graceful_shutdown=max(1, int(args.shutdown_grace)),
    )
    server = uvicorn.Server(config)
    # uvicorn handles SIGTERM/SIGINT itself (graceful shutdown), then re-raises the signal
    # to the handler that was there before; make that one a no-op so a graceful stop
    # exits 0 (what systemd, Docker and Kubernetes expect).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    try:
        server.run()
    except SystemExit:  # uvicorn exits this way when it cannot bind
        pass
    finally:
        queue.close()
        _close_github(worker)
    if not server.started:
        raise LabCIError(f"cannot serve on {args.host}:{args.port} (address in use or not allowed; see the log above)")
    return 0


def _run_worker_only(worker) -> int:
    if worker is None:
        raise LabCIError("--worker-only needs at least one worker (--workers N, N > 0)")
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    worker.start()
    while not done.wait(1.0):
        if worker.alive() == 0:
            break
    worker.stop()
    _close_github(worker)
    return 0


def _close_github(worker) -> None:
    """Close the cached GitHub HTTP sessions (one per installation) and the shared
    teachers (``Services.close``)."""
    if worker is not None:
        worker.services.close()
