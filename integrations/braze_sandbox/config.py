"""The sandbox's settings: what ``BrazeSandbox``, ``configure`` and ``/_sandbox/api/config``
accept, each value coerced and checked, and the key masking used wherever a key is shown."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from integrations.braze_sandbox.rules import MAX_ARRAY_LIMIT, is_number


class SandboxConfigError(ValueError):
    """A setting passed to ``BrazeSandbox``/``configure``/``/_sandbox/api/config`` is invalid."""


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SandboxConfig:
    """The sandbox's settings. ``*_next`` values are consumed as requests arrive."""

    api_keys: frozenset[str] = frozenset()
    forbidden_keys: frozenset[str] = frozenset()
    accept_any_key: bool = False
    rate_limit: int = 3000
    rate_window: float = 3.0
    array_limit: int = 25
    max_updates_per_request: int | None = None
    fail_rate: float = 0.0
    fail_next: int = 0
    status_next: tuple[int, ...] = ()
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    drop_rate: float = 0.0
    drop_next: int = 0
    log_limit: int = 500

    def updated(self, changes: Mapping[str, object]) -> SandboxConfig:
        """A copy with ``changes`` applied; raises ``SandboxConfigError`` naming a bad setting."""
        unknown = sorted(set(changes) - set(_COERCERS))
        if unknown:
            raise SandboxConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            try:
                values[name] = _COERCERS[name](value)
            except (TypeError, ValueError) as exc:
                raise SandboxConfigError(f"{name}: {exc}") from exc
        return dataclasses.replace(self, **values)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-ready data, keys masked to their last four characters."""
        data = dataclasses.asdict(self)
        data["api_keys"] = sorted(mask_key(key) for key in self.api_keys)
        data["forbidden_keys"] = sorted(mask_key(key) for key in self.forbidden_keys)
        data["status_next"] = list(self.status_next)
        return data


def _int_from(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def coerce(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("expected an integer")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    return coerce


def _optional_int_from(minimum: int) -> Callable[[object], int | None]:
    coerce = _int_from(minimum)
    return lambda value: None if value is None else coerce(value)


def _number_from(minimum: float, maximum: float | None = None) -> Callable[[object], float]:
    def coerce(value: object) -> float:
        if not is_number(value):
            raise TypeError("expected a number")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}")
        return number

    return coerce


def _positive_number(value: object) -> float:
    number = _number_from(0.0)(value)
    if number <= 0:
        raise ValueError("must be more than 0")
    return number


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _key_set(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("expected a list of keys")
    keys = frozenset(value)
    if not all(isinstance(key, str) and key for key in keys):
        raise TypeError("keys must be non-empty strings")
    return keys


def _status_codes(value: object) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("expected a list of HTTP status codes")
    return tuple(_int_from(300, 599)(code) for code in value)


_COERCERS: Final[dict[str, Callable[[object], object]]] = {
    "api_keys": _key_set,
    "forbidden_keys": _key_set,
    "accept_any_key": _boolean,
    "rate_limit": _int_from(1),
    "rate_window": _positive_number,
    "array_limit": _int_from(1, MAX_ARRAY_LIMIT),
    "max_updates_per_request": _optional_int_from(1),
    "fail_rate": _number_from(0.0, 1.0),
    "fail_next": _int_from(0),
    "status_next": _status_codes,
    "latency_ms": _number_from(0.0),
    "latency_jitter_ms": _number_from(0.0),
    "drop_rate": _number_from(0.0, 1.0),
    "drop_next": _int_from(0),
    "log_limit": _int_from(1),
}


def mask_key(key: str) -> str:
    """The last four characters of ``key`` (nothing for keys too short to hide the rest)."""
    return key[-4:] if len(key) >= 8 else ""
