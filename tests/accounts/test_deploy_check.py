"""`refloop check --deploy` is clean for production settings, and every page carries the security headers."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from django.test import Client

from tests.test_cli import run_refloop

TEMPLATES = Path(__file__).resolve().parents[2] / "refloop" / "templates"


def test_check_deploy_reports_nothing_for_production_settings(tmp_path):
    env = {
        "REFLOOP_DATA_DIR": str(tmp_path),
        "REFLOOP_SECRET_KEY": secrets.token_urlsafe(60),
        "REFLOOP_ALLOWED_HOSTS": "refloop.lakeside.example",
    }
    result = run_refloop("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_script(client_as):
    response = client_as("coordinator").get("/referrals/")
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in policy["script-src"] and "unsafe-eval" not in policy["script-src"]
    assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
    login = Client().get("/login/")
    assert "script-src 'self'" in login["Content-Security-Policy"]


def test_no_template_has_inline_script_or_event_handler_attributes():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"<[^>]+\s(on[a-z]+|hx-on[:a-z-]*)\s*=", re.IGNORECASE)
    javascript_url = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)
    found = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for pattern in (inline_script, handler, javascript_url):
            found += [f"{path.relative_to(TEMPLATES)}: {m.group(0)[:60]}" for m in pattern.finditer(text)]
    assert found == []


def test_production_cookies_are_secure_and_http_is_redirected(tmp_path):
    env = {"REFLOOP_DATA_DIR": str(tmp_path), "REFLOOP_SECRET_KEY": secrets.token_urlsafe(60)}
    code = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)"
    )
    result = run_refloop("shell", "-c", code, env=env)
    values = result.stdout.strip().splitlines()[-1].split()
    assert values == ["True", "True", "True", "True", "True", "31536000"], result.stderr
