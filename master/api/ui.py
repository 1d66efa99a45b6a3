"""`/ui/`: the web page's static files, served by every master to anyone, token or not.

The files hold no data (the page asks the API for everything, with the token the user typed), so
the door lets them through without a token (auth.OPEN_PATHS takes `PATHS`). Only the files named
in `FILES` are served, each by its fixed name: a path is looked up in that table, never joined to
the directory, so `/ui/../app.py` or `/ui/vendor/LICENSE-alpinejs` name nothing. Every answer of
this blueprint carries the page's security headers: a Content-Security-Policy that allows scripts,
styles and connections to this origin alone (no inline script, no eval: Alpine's CSP build), no
framing, no referrer, no MIME sniffing.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, redirect, send_from_directory

from master.errors import ApiError

bp = Blueprint("ui", __name__)
DIRECTORY = Path(__file__).with_name("ui_files")
ALPINE = "vendor/alpine-csp-3.17.4.esm.min.js"  # VENDORED.md beside it: version, sum, source, licence
FILES = {  # name under /ui/ -> its type
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    ALPINE: "text/javascript; charset=utf-8",
}
PATHS = frozenset({"/ui", "/ui/", *(f"/ui/{name}" for name in FILES)})
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'none'",
    "frame-ancestors 'none'"))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # not fingerprinted: a master upgraded serves new files at the same names, so always revalidate
    "Cache-Control": "no-cache",
}


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


@bp.get("/ui")
def ui_root() -> Response:
    return redirect("/ui/", 308)


@bp.get("/ui/")
def ui_index() -> Response:
    return ui_file("index.html")


@bp.get("/ui/<path:name>", merge_slashes=False)  # `//` answers 404, as any other name
def ui_file(name: str) -> Response:
    mimetype = FILES.get(name)
    if mimetype is None:
        raise ApiError(404, "NotFound", "no such file of the web page", None)
    return send_from_directory(DIRECTORY, name, mimetype=mimetype, max_age=0)
