"""A request's data class: the strictest of the config default, its team, its key, its
alias and its ``x-gateway-data-class`` header.

A header may tighten what applies, never loosen it: a header looser than what the team, key,
alias or default require is refused with a 400 naming the header and the required class (an
explicit error rather than a silent upgrade, so a client that believes it sends public data
learns that it does not). A value other than ``public``, ``internal`` or ``private`` is a
400 naming the allowed values. ``Classification.sources`` names what set the class (every
source at that class; ``default`` only when nothing else does).
Imports: stdlib, ``gateway`` modules and ``policies``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import metrics
from gateway.accounting.model import Principal
from gateway.asgi import Scope, header
from gateway.config import Alias
from gateway.errors import InvalidRequest
from policies.model import DATA_CLASSES, DataClass

DATA_CLASS_HEADER = b"x-gateway-data-class"
_HEADER_NAME = DATA_CLASS_HEADER.decode()


@dataclass(frozen=True, slots=True)
class Classification:
    """The class in force for one request and what set it."""

    data_class: DataClass
    sources: tuple[str, ...]
    """``default``, ``team``, ``key``, ``alias``, ``header``, ``detector:NAME`` ..."""

    @property
    def pinned(self) -> bool:
        """Stricter than public: only deployments allowing the class may serve it."""
        return self.data_class != "public"


PUBLIC_BY_DEFAULT = Classification("public", ("default",))


def classify(
    scope: Scope, default: DataClass, principal: Principal, alias: Alias
) -> Classification:
    """The request's classification (raises InvalidRequest for a bad or loosening header)."""
    team = principal.team.data_class
    key = None if principal.key is None else principal.key.data_class
    raw = header(scope, DATA_CLASS_HEADER)
    if raw is None and default == "public" and team is None and key is None:
        if alias.data_class is None:
            return PUBLIC_BY_DEFAULT  # the common case: nothing to compare, nothing allocated
    levels: list[tuple[str, DataClass | None]] = [
        ("team", team),
        ("key", key),
        ("alias", alias.data_class),
    ]
    required = max((level for _, level in levels if level is not None), key=_rank, default=None)
    floor = default if required is None or _rank(default) > _rank(required) else required
    if raw is not None:
        asked = _parse_header(raw)
        if _rank(asked) < _rank(floor):
            metrics.child(metrics.PRIVACY_DECISIONS, "header_rejected").inc()
            raise InvalidRequest(
                f"header {_HEADER_NAME}: {asked!r} is looser than the {floor!r} this request "
                f"requires (its key, team, alias or the default); send {floor!r} or stricter",
                param=_HEADER_NAME,
            )
        levels.append(("header", asked))
        floor = asked
    sources = tuple(name for name, level in levels if level == floor)
    return Classification(floor, sources or ("default",))


def upgraded(classification: Classification, detectors: tuple[str, ...]) -> Classification:
    """``private``, set by the detectors that matched (on top of what was there)."""
    found = tuple(f"detector:{name}" for name in detectors)
    return Classification("private", (*classification.sources, *found))


def _parse_header(raw: bytes) -> DataClass:
    value = raw.decode("latin-1").strip().lower()
    for name in DATA_CLASSES:
        if value == name:
            return name
    metrics.child(metrics.PRIVACY_DECISIONS, "header_rejected").inc()
    raise InvalidRequest(
        f"header {_HEADER_NAME}: must be one of {', '.join(DATA_CLASSES)}, "
        f"got {raw.decode('latin-1')[:40]!r}",
        param=_HEADER_NAME,
    )


def _rank(level: DataClass) -> int:
    return DATA_CLASSES.index(level)
