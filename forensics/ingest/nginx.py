"""nginx access logs: ``combined``, ``main``, Nginx Proxy Manager, and any ``log_format`` string.

Lines follow ngx_http_log_module: ``$time_local`` with the server's offset, quoted fields escaped as
``\\xHH`` (uppercase; bytes 0x00-0x1F, ``"``, ``\\``, 0x7F-0xFF), ``-`` for empty values. Behind a load
balancer ``$remote_addr`` is the balancer; the client comes from ``$http_x_forwarded_for`` (see
:mod:`forensics.clients`). Variants real servers write (vhost prefix, missing ident, address lists,
binary sent to the HTTP port, ``""``) are handled by the lenient stage of :mod:`._clf`.
"""

from __future__ import annotations

import re
from functools import cache

import polars as pl

from . import _clf
from .base import Detection, FileContext, Ingestor
from .logformat import FAMILIES, CompiledFormat, presets

_UPPER_ESCAPE = re.compile(r"\\x(?:[0-9A-F][A-F]|[A-F][0-9])")


@cache
def nginx_presets() -> dict[str, CompiledFormat]:
    return presets("nginx")


def with_family(formats: list[str]) -> list[str]:
    """A product's other formats follow the ones seen (Nginx Proxy Manager: proxy, standard, the
    fallback combined, and its error lines)."""
    out = list(formats)
    for family in FAMILIES.values():
        if any(f in family for f in formats):
            out += [f for f in family if f not in out]
    return out


class NginxIngestor(Ingestor):
    name = "nginx"
    description = "nginx access log (combined, main, Nginx Proxy Manager, or --log-format)"
    recognised_by = (
        "lines with '[dd/Mon/yyyy:hh:mm:ss +zzzz]'; trial parse of the head with each preset "
        f"({', '.join(nginx_presets())}) and the lenient CLF stage"
    )

    def sniff(self, lines: list[str], path: str) -> Detection | None:
        # nginx and Apache write identical combined lines: the path and the escaping break the tie.
        bonus = 0.01
        if "nginx" in path.lower():
            bonus += 0.15
        if _UPPER_ESCAPE.search("\n".join(lines[:50])):
            bonus += 0.02
        candidates = {k: v for k, v in nginx_presets().items() if k != "nginx_error"}
        found = _clf.sniff_clf(self.name, lines, candidates, lenient=True, bonus=bonus)
        if found is not None:
            found.params["formats"] = with_family(found.params["formats"])
        return found

    def parse(self, frame: pl.DataFrame, ctx: FileContext) -> tuple[pl.DataFrame, pl.DataFrame]:
        return _clf.run(self.name, frame, ctx, nginx_presets(), lenient=True)
