"""The ingestor registry and format detection.

Detection (after plaso's parser manager): every ingestor looks at the first lines of the decompressed
file, a cheap literal check first, then a trial parse, and returns a confidence. The highest wins
(registry order breaks ties); below :data:`MIN_CONFIDENCE` the file is *unknown*: reported, never
half-parsed. ``--format`` names an ingestor (or one of its presets) and skips the contest;
``--log-format`` compiles the user's nginx/Apache format string.
"""

from __future__ import annotations

from ..errors import ForensicsError
from .alb import AlbIngestor
from .apache import ApacheIngestor, apache_presets
from .apigw import ApiGatewayIngestor
from .azure_appgw import AzureAppGatewayIngestor
from .base import Detection, IngestOptions, Ingestor
from .caddy import CaddyIngestor
from .cloudfront import CloudFrontIngestor
from .elb import ElbClassicIngestor
from .envoy import EnvoyIngestor
from .gcp_lb import GcpLoadBalancerIngestor
from .har import HarIngestor
from .kong import KongIngestor
from .logformat import FAMILIES, compile_format
from .nginx import NginxIngestor, nginx_presets
from .nginx_json import NginxJsonIngestor
from .traefik import TraefikIngestor

MIN_CONFIDENCE = 0.4

#: Every format the tool reads, in tie-break order. Explicit, so the list is greppable.
INGESTORS: list[Ingestor] = [
    NginxIngestor(),
    ApacheIngestor(),
    NginxJsonIngestor(),
    AlbIngestor(),
    ElbClassicIngestor(),
    CloudFrontIngestor(),
    ApiGatewayIngestor(),
    HarIngestor(),
    CaddyIngestor(),
    KongIngestor(),
    TraefikIngestor(),
    EnvoyIngestor(),
    GcpLoadBalancerIngestor(),
    AzureAppGatewayIngestor(),
]

_BY_NAME = {ing.name: ing for ing in INGESTORS}


def get(name: str) -> Ingestor:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ForensicsError(
            f"unknown format {name!r}", hint="`forensics formats` lists the formats and presets"
        ) from None


def preset_names() -> dict[str, str]:
    """Preset name → ingestor name (``main`` → ``nginx``); qualified ``nginx:main`` also works."""
    out: dict[str, str] = {}
    for preset in [*nginx_presets(), *FAMILIES]:
        out.setdefault(preset, "nginx")
        out[f"nginx:{preset}"] = "nginx"
    for preset in apache_presets():
        out.setdefault(preset, "apache")
        out[f"apache:{preset}"] = "apache"
    return out


def detect(lines: list[str], path: str, options: IngestOptions) -> Detection | None:
    """Choose the ingestor for a file from its head lines (and the user's overrides)."""
    if options.log_format:
        fmt = compile_format(options.log_format)
        name = "nginx" if fmt.dialect == "nginx" else "apache"
        return Detection(
            name, 1.0, f"--log-format ({fmt.dialect} syntax)", params={"compiled": fmt}, variant="custom"
        )
    if options.format:
        requested = options.format
        presets = preset_names()
        if requested in _BY_NAME:
            ing = _BY_NAME[requested]
            found = ing.sniff(lines, path)
            params = found.params if found else {}
            variant = found.variant if found else None
            return Detection(ing.name, 1.0, "--format", params=params, variant=variant)
        if requested in presets:
            ing_name = presets[requested]
            preset = requested.split(":", 1)[-1]
            formats = FAMILIES.get(preset, [preset])
            return Detection(ing_name, 1.0, "--format (preset)", params={"formats": formats}, variant=preset)
        get(requested)  # raises the user-facing error
    best: Detection | None = None
    for ing in INGESTORS:
        try:
            found = ing.sniff(lines, path)
        except Exception:  # a sniffer must never sink detection for the others
            found = None
        if found and (best is None or found.confidence > best.confidence):
            best = found
    if best is None or best.confidence < MIN_CONFIDENCE:
        return None
    return best


def all_format_names() -> list[str]:
    return [ing.name for ing in INGESTORS]


__all__ = [
    "INGESTORS",
    "MIN_CONFIDENCE",
    "Detection",
    "IngestOptions",
    "Ingestor",
    "detect",
    "get",
]
