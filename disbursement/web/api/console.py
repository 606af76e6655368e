"""The site root leads to the officers' console (disbursement.web.console),
which asks for a sign-in before it shows any figure."""
from __future__ import annotations

from flask import Blueprint, redirect, url_for

bp = Blueprint("console", __name__)


@bp.get("/")
def index():
    return redirect(url_for("officer.home"))
