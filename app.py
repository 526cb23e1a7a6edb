"""Entry point: `gunicorn app:app` (see Procfile and gunicorn.conf.py) or `flask run`."""

from webapp import create_app

app = create_app()
