"""Operations wiring of the app (issue 5): HTTP request metrics and the
dashboard data API."""
from __future__ import annotations

import time

from flask import Flask, g, request

from disbursement import metrics


def register(app: Flask) -> None:
    from disbursement.web.api import dashboard

    app.register_blueprint(dashboard.bp)

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count_request(response):
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
