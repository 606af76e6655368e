"""The Flask application: API under /api/v1, the officers' console under
/console, health and metrics."""
from __future__ import annotations

import logging

from flask import Flask

from disbursement import bootstrap
from disbursement.bootstrap import Services
from disbursement.settings import Settings
from disbursement.web import errors, observability
from disbursement.web.api import (
    batches,
    confirmations,
    console,
    cycles,
    health,
    partner_ops,
    recon,
    registry,
    service_points,
    session,
    transfers,
)
from disbursement.web.console import init_app as init_console


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """The app on `services`, else on services built from `settings`, else from
    the environment (gunicorn): always through the composition root."""
    if services is None:
        services = bootstrap.build(settings) if settings else bootstrap.from_environment()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_upload_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["disburse"] = services
    errors.register(app)

    for module in (session, registry, cycles, batches, confirmations, transfers, health, console,
                   partner_ops):
        app.register_blueprint(module.bp)
    app.register_blueprint(service_points.bp)
    app.register_blueprint(recon.bp)
    app.register_blueprint(recon.partner_bp)
    observability.register(app)
    init_console(app)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return app
