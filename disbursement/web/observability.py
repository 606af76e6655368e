"""Operations wiring of the app (issue 5): the dashboard data API."""
from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from disbursement.web.api import dashboard

    app.register_blueprint(dashboard.bp)
