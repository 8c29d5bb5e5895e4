"""
An Airflow plugin that ``make demo`` installs on Airflow 3.1 and 3.2: a link that signs the visitor in and opens a page.

With ``SIMPLE_AUTH_MANAGER_ALL_ADMINS`` (every visitor an admin, as the demo runs it), Airflow's UI
answers the first visit of any page with its sign-in, ``/auth/token/login?next=<page>``. Up to 3.2.2
that route sets the token cookie and opens Home, dropping ``next`` (apache/airflow#67483, fixed in
3.3), so the run page the demo printed showed Home the first time and itself only the second.
``/opus-demo/sign-in?next=<path>`` sets the same cookie the same way and opens ``next``: a path on
this server (Airflow's own ``is_safe_url`` check), Home otherwise.

``scripts/demo.py`` copies this file into the demo's plugins folder; it is not part of the provider.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

app = FastAPI(title="Opus demo sign-in")


@app.get("/sign-in")
def sign_in(request: Request, next: str = "/") -> RedirectResponse:
    """Sign the visitor in as Airflow's all-admins login does, then open ``next``."""
    from airflow.api_fastapi.app import get_cookie_path
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
    from airflow.api_fastapi.core_api.security import is_safe_url

    # Refuses (403) unless every visitor is an admin anyway: this link grants nothing more.
    token = SimpleAuthManagerLogin.create_token_all_admins()
    target = next if next.startswith("/") and is_safe_url(next, request=request) else "/"
    response = RedirectResponse(url=target, status_code=307)
    response.set_cookie(COOKIE_NAME_JWT_TOKEN, token, path=get_cookie_path(), httponly=True)
    return response


class OpusDemoSignIn(AirflowPlugin):
    """Serves :func:`sign_in` under ``/opus-demo``."""

    name = "opus_demo_sign_in"
    fastapi_apps = [{"app": app, "url_prefix": "/opus-demo", "name": "Opus demo sign-in"}]
