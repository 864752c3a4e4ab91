"""WSGI entry point: ``gunicorn wsgi:app``.

Creates the app from the environment (see README, Configuration). It never
migrates or seeds: run ``flask --app backend db-upgrade`` before starting.
"""

from backend import create_app
from backend.jobs import start_worker

app = create_app()

if app.config["JOB_WORKER_AUTOSTART"]:
    # The `thread` backend's worker lives in this process; other backends ignore it.
    start_worker(app)
