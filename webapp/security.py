"""Security headers on every response. The CSP allows no inline script or style:
the page's behaviour lives in static/js/app.js, bar widths in static/css/app.css."""

from __future__ import annotations

from flask import Flask, request

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",  # result previews are data: URIs, JS previews blob: URLs
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


#: On HTTPS responses only (browsers ignore it over HTTP, and a development server on
#: plain HTTP stays reachable): a year of HTTPS only, so that a first visit typed
#: without https:// cannot be kept on HTTP by someone on the network (the admin's
#: password is typed on this site).
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def register(app: Flask) -> None:
    @app.after_request
    def add_security_headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        return response
