"""Keeping logins out of every copy this library writes.

A requirements file may name ``--extra-index-url https://user:token@host/simple``; the
build folder keeps copies of the project's inputs and of what was installed, and the
layer cache keeps the pins. Every such copy goes through ``redact_urls`` first, so the
token stays in the user's own file and the installer's environment, nowhere else.
"""

from __future__ import annotations

import re

#: The login is everything before the *last* ``@`` of the authority (RFC 3986 section 3.2; pip and uv split
#: there too), so an e-mail user name (``ci@acme.com:token@host``) or an ``@`` in a password goes whole.
#: RFC 3986 lets a login hold sub-delimiters (``!$&'()*+,;=``) unencoded, the apostrophe included.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s\"<>]*)@")


def redact_urls(text: str) -> str:
    """Replace the login in every URL (``scheme://user:password@host``) by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
