"""Operations wiring of the app (issue 5): HTTP request metrics and the
dashboard data API. What `/metrics` serves is in `disbursement.web.scrape`."""
from __future__ import annotations

import time

from flask import Flask, Response, g, request

from disbursement import metrics
from disbursement.web.api import dashboard as dashboard_api


def register(app: Flask) -> None:
    app.register_blueprint(dashboard_api.bp)
    app.before_request(_start_timer)
    app.after_request(_count_request)


def _start_timer() -> None:
    g.request_started = time.perf_counter()


def _count_request(response: Response) -> Response:
    # The route's endpoint name, never the raw path: references and ids in
    # paths would make one time series per transfer.
    endpoint = request.endpoint or "unmatched"
    metrics.HTTP_REQUESTS.labels(method=request.method, endpoint=endpoint,
                                 status=str(response.status_code)).inc()
    started = g.get("request_started")
    if started is not None:
        metrics.HTTP_REQUEST_SECONDS.labels(method=request.method, endpoint=endpoint).observe(
            time.perf_counter() - started)
    return response
