"""Apache httpd access logs: common, combined, Debian's ``%O`` and vhost variants, any ``LogFormat``.

mod_log_config writes ``%t`` as ``[10/Oct/2000:13:55:36 -0700]``, ``%b`` as ``-`` for an empty body,
quoted fields with ``\\"``, ``\\\\`` and lowercase ``\\xhh`` escapes; lines can be truncated mid-field
(those become rejects). Apache and nginx write identical combined lines; detection prefers Apache when
the path or the escaping says so.
"""

from __future__ import annotations

import re
from functools import cache

import polars as pl

from . import _clf
from .base import Detection, FileContext, Ingestor
from .logformat import CompiledFormat, presets

_APACHE_HINT = re.compile(r'\\"|\\x(?:[0-9a-f][a-f]|[a-f][0-9])')


@cache
def apache_presets() -> dict[str, CompiledFormat]:
    return presets("apache")


class ApacheIngestor(Ingestor):
    name = "apache"
    description = "Apache httpd access log (common, combined, vhost_combined, or --log-format)"
    recognised_by = (
        "lines with '[dd/Mon/yyyy:hh:mm:ss +zzzz]'; trial parse with each preset "
        f"({', '.join(apache_presets())}); preferred over nginx when the path names apache/httpd "
        'or quoted fields use \\" / lowercase \\xhh escapes'
    )

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        bonus = 0.0
        low = path.lower()
        if "apache" in low or "httpd" in low:
            bonus += 0.15
        if _APACHE_HINT.search("\n".join(lines[:50])):
            bonus += 0.03
        return _clf.sniff_clf(self.name, lines, apache_presets(), lenient=True, bonus=bonus)

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return _clf.run(self.name, frame, ctx, apache_presets(), lenient=True)
