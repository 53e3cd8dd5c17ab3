"""Makes what a Schemathesis run needs on a fresh tokenward and prints it as
shell `export` lines: the instance admin's session (it signs every request
that takes a bearer credential), a verifier token (for POST /tokens/verify,
which refuses a session), and real objects for the path parameters, so that
requests reach the handlers' logic rather than stop at `404`.

Usage: python3 schemathesis-setup.py http://127.0.0.1:PORT
"""

import json
import shlex
import sys
import urllib.request

url = sys.argv[1]


def call(method, path, body, session=None):
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    if session:
        request.add_header("Authorization", "Bearer " + session)
    with urllib.request.urlopen(request) as response:
        return json.load(response)["data"]


password = "schemathesis-password"
admin = call("POST", "/api/v1/accounts", {"email": "admin@example.com", "password": password})
session = admin["token"]
workspace = call("GET", "/api/v1/me", None, session)["workspaces"][0]["id"]
call("PUT", f"/api/v1/workspaces/{workspace}/scopes/contacts", {"description": "contacts"}, session)
member = call("POST", "/api/v1/accounts", {"email": "member@example.com", "password": password}, session)
call(
    "POST",
    f"/api/v1/workspaces/{workspace}/members",
    {"email": "member@example.com", "role": "member", "scopes": ["contacts"]},
    session,
)
# An account of its own for PATCH and DELETE /accounts/{id} to disable and
# delete.
spare = call("POST", "/api/v1/accounts", {"email": "spare@example.com", "password": password}, session)
verifier = call("POST", "/api/v1/tokens", {"name": "verifier", "scopes": ["verify"]}, session)
token = call("POST", "/api/v1/tokens", {"name": "a token", "scopes": ["contacts"]}, session)
domain = call("POST", "/api/v1/domains", {"name": "example.com"}, session)

for name, value in [
    ("TOKENWARD_SESSION", session),
    ("TOKENWARD_VERIFIER", verifier["token"]),
    ("TOKENWARD_WORKSPACE", workspace),
    ("TOKENWARD_MEMBER", member["account"]["id"]),
    ("TOKENWARD_SPARE_ACCOUNT", spare["account"]["id"]),
    ("TOKENWARD_TOKEN", token["id"]),
    ("TOKENWARD_DOMAIN", domain["domain"]["id"]),
]:
    print(f"export {name}={shlex.quote(value)}")
