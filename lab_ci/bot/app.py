"""The webhook service: a Starlette app (served by uvicorn in ``lab-ci serve``).

Routes
------
``POST /webhook`` (and ``POST /``)
    1. body read with a cap (``Content-Length`` first, then while streaming) -> 413;
    2. ``X-Hub-Signature-256`` checked when a secret is configured -> 401 (missing/bad);
    3. headers and JSON parsed -> 400; App target id and optional event age -> 403;
    4. ``ping`` -> 200 ``pong`` (nothing stored);
    5. the delivery and one ``delivery`` job are committed in one transaction -> 202
       ``accepted``; a delivery id or body seen before -> 200 ``duplicate`` (no new job).
    Every event is accepted and stored; deciding what it means (routing) happens in a
    worker, so the endpoint answers in milliseconds whatever the event.
``GET /healthz``  200 ``{"status": "ok", ...}`` when the queue database answers and
    (if this process runs workers) all worker threads are alive; 503 otherwise.
``GET /metrics``  Prometheus text format (see :mod:`lab_ci.bot.metrics`).

Deliveries are committed by one writer thread with *group commit* (:class:`DeliveryWriter`):
concurrent requests are stored in one transaction, one fsync, and each request is
answered only after the commit that holds it (``synchronous=FULL``: an acknowledged
delivery survives a crash or a power cut). Other database reads run in Starlette's thread
pool, so a busy database never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue as queue_mod
import threading
import time
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import webhooks
from .logs import log_event
from .metrics import CONTENT_TYPE, Metrics
from .queue import Queue
from .settings import Settings

log = logging.getLogger("lab_ci.bot.app")

#: bodies larger than this are verified and parsed in a thread, not on the event loop
LARGE_BODY = 256 * 1024


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise webhooks.TooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
        except ValueError:
            raise webhooks.BadDelivery("invalid Content-Length header", "malformed") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise webhooks.TooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class DeliveryWriter:
    """Commits deliveries in batches from one thread (group commit).

    ``await writer.record(...)`` enqueues the delivery and resolves when the batch that
    holds it is committed (True) or found duplicate (False); a database error is raised
    to every request of the failed batch. Batches are whatever arrived while the previous
    commit ran, up to ``max_batch``: one request alone is committed at once.
    """

    def __init__(self, queue: Queue, max_batch: int = 256):
        self.queue = queue
        self.max_batch = max_batch
        self._items: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lab-ci-delivery-writer", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._items.put(None)
            thread.join(timeout)

    async def record(self, delivery_id: str, event: str, body: bytes, meta: dict | None) -> bool:
        if self._thread is None:
            self.start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._items.put((loop, future, (delivery_id, event, body, meta)))
        return await future

    @staticmethod
    def _resolve(future: asyncio.Future, result) -> None:
        if future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    def _run(self) -> None:
        record_many = getattr(self.queue, "record_deliveries", None)
        while True:
            item = self._items.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    nxt = self._items.get_nowait()
                except queue_mod.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            args = [b[2] for b in batch]
            try:
                if record_many is not None:
                    results: list = record_many(args)
                else:  # a Queue without batching: one transaction each
                    results = [self.queue.record_delivery(d, e, b, meta=m) for d, e, b, m in args]
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                results = [e] * len(batch)
            self.batches += 1
            for (loop, future, _), result in zip(batch, results):
                try:
                    loop.call_soon_threadsafe(self._resolve, future, result)
                except RuntimeError:  # the loop is closed: nobody is waiting any more
                    pass
            if stop:
                return


def create_app(settings: Settings, queue: Queue, *, metrics: Metrics | None = None, worker=None) -> Starlette:
    """The ASGI app. When ``worker`` (a :class:`~lab_ci.bot.worker.Worker`) is given, the
    app's lifespan starts it and stops it (gracefully) on shutdown."""
    metrics = metrics or Metrics()
    metrics.bind(stats=queue.stats, workers_alive=worker.alive if worker is not None else None)
    writer = DeliveryWriter(queue)

    def reject(err: webhooks.WebhookError, event: str | None, delivery_id: str | None) -> JSONResponse:
        metrics.deliveries_rejected.labels(reason=err.reason).inc()
        log_event(
            log,
            "delivery_rejected",
            logging.WARNING,
            reason=err.reason,
            status=err.status,
            event=event,
            delivery_id=delivery_id,
            error=str(err),
        )
        return JSONResponse({"status": "rejected", "reason": err.reason, "error": str(err)}, status_code=err.status)

    def check(headers, body: bytes) -> webhooks.Delivery:
        return webhooks.authenticate(
            headers, body, secret=settings.webhook_secret, app_id=settings.app_id, max_age=settings.max_delivery_age
        )

    async def webhook(request: Request) -> Response:
        t0 = time.perf_counter()
        # unauthenticated values: only logged (JSON-escaped, truncated), never metric labels
        event = (request.headers.get(webhooks.EVENT_HEADER) or "")[:100] or None
        delivery_id = (request.headers.get(webhooks.DELIVERY_HEADER) or "")[:100] or None
        metrics.deliveries_received.inc()
        try:
            body = await _read_body(request, settings.max_body_bytes)
            if len(body) > LARGE_BODY:  # HMAC + JSON of a big body: off the event loop
                delivery = await run_in_threadpool(check, request.headers, body)
            else:
                delivery = check(request.headers, body)
        except webhooks.WebhookError as err:
            return reject(err, event, delivery_id)

        if delivery.event == "ping":
            metrics.deliveries_rejected.labels(reason="ping").inc()
            log_event(log, "ping", delivery_id=delivery.id, hook_id=delivery.hook_id)
            return JSONResponse({"status": "pong", "delivery": delivery.id})

        meta = {"action": delivery.action, "installation_id": delivery.installation_id}
        try:
            stored = await writer.record(delivery.id, delivery.event, body, meta)
        except Exception as e:  # the queue is unavailable: tell GitHub it failed (redeliverable)
            metrics.deliveries_rejected.labels(reason="queue_unavailable").inc()
            log_event(
                log,
                "delivery_not_stored",
                logging.ERROR,
                event=delivery.event,
                delivery_id=delivery.id,
                error=f"{type(e).__name__}: {e}",
            )
            return JSONResponse({"status": "error", "reason": "queue_unavailable"}, status_code=503)
        if not stored:
            metrics.deliveries_rejected.labels(reason="duplicate").inc()
            log_event(log, "delivery_duplicate", event=delivery.event, delivery_id=delivery.id)
            return JSONResponse({"status": "duplicate", "delivery": delivery.id}, status_code=200)
        if worker is not None:
            worker.notify()
        metrics.deliveries_accepted.labels(event=delivery.event).inc()
        elapsed = time.perf_counter() - t0
        metrics.ack_seconds.observe(elapsed)
        log_event(
            log,
            "delivery_accepted",
            event=delivery.event,
            action=delivery.action,
            delivery_id=delivery.id,
            installation_id=delivery.installation_id,
            bytes=len(body),
            ms=round(elapsed * 1000, 2),
        )
        return JSONResponse({"status": "accepted", "delivery": delivery.id}, status_code=202)

    async def healthz(request: Request) -> Response:
        db_ok = await run_in_threadpool(queue.ping)
        out: dict = {"db": "ok" if db_ok else "unreachable"}
        ok = db_ok
        if worker is not None:
            alive = worker.alive()
            out["workers"] = {"alive": alive, "configured": worker.configured, "stopping": worker.stopping}
            ok = ok and alive == worker.configured and not worker.stopping
        out["status"] = "ok" if ok else "unhealthy"
        return JSONResponse(out, status_code=200 if ok else 503)

    async def metrics_endpoint(request: Request) -> Response:
        # the collector reads the queue: off the event loop
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        log_event(log, "service_started", **settings.describe())
        writer.start()
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(writer.stop)
            if worker is not None:
                await run_in_threadpool(worker.stop)
            log_event(log, "service_stopped")

    app = Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.queue = queue
    app.state.metrics = metrics
    app.state.worker = worker
    app.state.writer = writer
    return app
