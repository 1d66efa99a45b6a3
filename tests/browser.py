"""A real browser for the web page's tests: Debian's chromium (lab/install.sh), driven by Playwright
from PyPI, with no browser download. It trusts exactly the masters' keys: each master's certificate
is first verified here against the cluster's CA, then its public key is pinned for chromium
(`--ignore-certificate-errors-spki-list`), so no certificate error is ignored wholesale."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def spki_pin(url: str, ca_file: Path) -> str:
    """The base64 SHA-256 of the public key of the certificate `url` serves, once verified by the CA."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=parts.hostname) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    key = x509.load_der_x509_certificate(der).public_key().public_bytes(Encoding.DER,
                                                                       PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


@contextlib.contextmanager
def chromium(urls: list[str], ca_file: Path) -> Iterator[Browser]:
    pins = ",".join(spki_pin(url, ca_file) for url in urls)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=[*ARGS, f"--ignore-certificate-errors-spki-list={pins}"])
        # an action's answer on a loaded 2-core machine can take past playwright's 5 s (once, with
        # three test workers, an undo's status line): each `expect` waits up to 30 s unless told
        expect.set_options(timeout=30_000)
        try:
            yield browser
        finally:
            expect.set_options(timeout=5_000)
            browser.close()


def signed_in(browser: Browser, url: str, token: str) -> Page:
    """A new tab (its own sessionStorage) on the page at `url`, signed in with `token`; page errors
    (a script that threw, a CSP refusal) fail the test."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    page.errors = errors  # type: ignore[attr-defined] - read by the test at its end
    page.goto(url)
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Overview").wait_for()
    return page
