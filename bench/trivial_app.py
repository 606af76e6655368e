"""The smallest Flask app: the floor for any endpoint of ours under gunicorn.

    gunicorn -w 2 -k sync -b 127.0.0.1:PORT bench.trivial_app:app
"""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def ok():
    return {"ok": True}
