"""WSGI entry point for gunicorn: `gunicorn -c config/gunicorn.conf.py disbursement.web.wsgi:app`.
The app is built when a worker imports this module, from the environment."""
from disbursement.logs import configure
from disbursement.web.app import create_app

configure()
app = create_app()
