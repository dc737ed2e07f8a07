"""The route template of a request path, the value of the ``endpoint`` label.

Clients choose request paths, so a path is never a label value as it is: ids become ``{id}``
(``/v1/files/file-abc`` and ``/v1/files/file-xyz`` are one series) and segments shaped like keys or
tokens become ``{key}`` (a gateway's ``/proxy/<key>/v1/...`` must not put a credential in a label).
"""

from __future__ import annotations

import re

from .keys import KEY_SEGMENT

_ID_SEGMENT = re.compile(
    r"^(?:(?:file|batch|resp|chatcmpl|asst|thread|run|msg|step|vs|ft|ftjob|ftckpt|upload|part|"
    r"modr|cmpl|req)[-_][\w-]+|[0-9a-fA-F-]{16,}|\d+)$")
#: OpenAI-style keys, and any long token mixing upper case, lower case and digits (a random
#: credential; route names and model names are not shaped so)
_KEY_SEGMENT = re.compile(
    r"^(?:(?:sk|pk|rk)-[\w-]{3,}|(?=[^A-Z]*[A-Z])(?=[^a-z]*[a-z])(?=\D*\d)[\w.~+=-]{16,})$")


def normalize_endpoint(path: str) -> str:
    """The route template of a request path: query dropped, id-like segments as ``{id}`` and
    key-like ones (``sk-…``, a gateway's ``/proxy/<key>/…``) as ``{key}``."""
    path = path.split("?", 1)[0].rstrip("/") or "/"
    return "/".join(KEY_SEGMENT if _KEY_SEGMENT.match(seg) else "{id}" if _ID_SEGMENT.match(seg)
                    else seg for seg in path.split("/"))
