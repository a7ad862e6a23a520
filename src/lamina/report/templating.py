"""The one Jinja environment of the report pages and notebook views: ``templates/`` (package data).

Autoescaping is on for every template: a value reaches the page escaped unless it is ``Markup``.
``finalize`` escapes each value with :func:`html.escape` before that, so the pages keep the bytes
they had before templates (``&#x27;`` and ``&quot;``, not markupsafe's ``&#39;`` and ``&#34;``):
searches for escaped text in pages and tests stay valid. Templates build text with loops, not with
``|join`` or ``~`` on raw values (those escape with markupsafe's spelling: still escaped, other bytes).
"""

from __future__ import annotations

import html

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


def _escaped(value) -> Markup:
    return value if hasattr(value, "__html__") else Markup(html.escape(str(value), quote=True))


ENV = Environment(loader=PackageLoader("lamina.report", "templates"), autoescape=True, finalize=_escaped,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_template(name: str, **context) -> str:
    """``templates/<name>`` rendered with ``context`` (a missing name is an error, not an empty string)."""
    return ENV.get_template(name).render(**context)
