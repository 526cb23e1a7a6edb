"""WSGI entry for PythonAnywhere-style hosting, which looks for `application`.

Point the host's WSGI configuration file at this project folder and import
`application` from here (see README, "Deploying on PythonAnywhere").
"""

from app import app as application

__all__ = ["application"]
