"""The Braze sandbox, a local Braze look-alike: ``POST /users/track``, ``POST /users/delete`` and
transactional sends,
with an inspection UI. Tooling, not production: only the ``braze_sandbox`` management command,
the tests, faults and the bench import it; the production client is ``integrations.braze``.

Contract (braze-api.md is the reference; where Braze's behaviour is UNCONFIRMED the sandbox picks
the stricter reading, so code that passes here should pass at Braze):

* Auth: ``Authorization: Bearer <key>``; unknown, missing or quoted key → 401, a key listed in
  ``forbidden_keys`` (it lacks ``users.track``) → 403 ``Access Denied``.
* ``/users/track``: body > 4 MiB → 413; not a JSON object → 400; no data → 400; an array with
  more than 75 objects (or more updates than ``max_updates_per_request``) → 400
  ``Max Input Length Exceeded``; otherwise 201 ``{"message": "success", "<array>_processed": n,
  "errors": [{"type", "input_array", "index"}]}`` where invalid objects are listed and not applied.
* ``/users/delete``: exactly one kind of identifier (``external_ids``, ``user_aliases``,
  ``braze_ids``, ``email_addresses``, ``phone_numbers``), 1 to 50 of them, else 400; the named
  profiles are removed (by email or phone: all that share it); 200 ``{"deleted": n}``.
* Profiles are created and updated per Braze's identifier and ``_update_existing_only`` rules and
  attribute semantics (``null`` unsets, ``inc``, ``add``/``remove``, array limit, nested merge).
* One fixed-window rate limit shared by all keys; ``X-RateLimit-*`` headers on every
  ``/users/track`` response; 429 when exhausted.
* Injected faults (``fail_rate``, ``fail_next``, ``status_next``, ``latency_ms``, ``drop_rate``,
  ``drop_next``) apply before anything else, like an unhealthy edge in front of Braze.
* ``/_sandbox/`` shows requests and profiles; ``/_sandbox/api/...`` is the same as JSON and lets
  tests reconfigure or reset the sandbox. No full API key is ever stored, logged or returned.
* ``reset()`` starts a new generation: a request still in flight (e.g. sleeping in injected
  latency) when the sandbox is reset leaves no trace in the fresh state.

Modules, by role:

* ``rules``: Braze's validation rules as pure functions (identifiers, attributes, events,
  purchases, request limits, transactional bodies).
* ``profiles``: the profile store and attribute semantics.
* ``config``: the settings, their coercion and checks; key masking.
* ``state``: request handling without HTTP: request log, faults, rate window, ``/users/track``,
  transactional sends, all behind one lock.
* ``page``: the ``/_sandbox/`` inspection page.
* ``server``: the HTTP server and handler, and the ``BrazeSandbox`` facade.

The public names are re-exported here: ``from integrations.braze_sandbox import BrazeSandbox``.

Standard library HTTP server only; of Django just ``gettext`` and ``escape`` for the page.
"""

from __future__ import annotations

from integrations.braze_sandbox.config import SandboxConfig, SandboxConfigError, mask_key
from integrations.braze_sandbox.page import render_page
from integrations.braze_sandbox.profiles import (
    Profile,
    ProfileStore,
    apply_attributes,
    apply_event,
    apply_purchase,
    apply_value,
    creation_refusal,
)
from integrations.braze_sandbox.rules import (
    MAX_ARRAY_LIMIT,
    MAX_EVENT_PROPERTIES,
    MAX_INPUT_MESSAGE,
    MAX_NESTED_BYTES,
    MAX_OBJECTS_PER_ARRAY,
    MAX_STRING_LENGTH,
    MISSING_IDENTIFIER,
    NO_DATA_MESSAGE,
    TRACK_ARRAYS,
    Identity,
    attribute_error,
    attribute_object_error,
    event_object_error,
    identity_of,
    parse_braze_time,
    parse_json_object,
    purchase_object_error,
    track_request_problem,
    transactional_problem,
)
from integrations.braze_sandbox.server import BrazeSandbox
from integrations.braze_sandbox.state import (
    MAX_BODY_BYTES,
    RATE_LIMIT_MESSAGE,
    RESET_IN_FLIGHT_MESSAGE,
    TRANSACTIONAL_DEDUP_SECONDS,
    ApiRequest,
    Reply,
    SandboxState,
)

__all__ = [
    "MAX_ARRAY_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_EVENT_PROPERTIES",
    "MAX_INPUT_MESSAGE",
    "MAX_NESTED_BYTES",
    "MAX_OBJECTS_PER_ARRAY",
    "MAX_STRING_LENGTH",
    "MISSING_IDENTIFIER",
    "NO_DATA_MESSAGE",
    "RATE_LIMIT_MESSAGE",
    "RESET_IN_FLIGHT_MESSAGE",
    "TRACK_ARRAYS",
    "TRANSACTIONAL_DEDUP_SECONDS",
    "ApiRequest",
    "BrazeSandbox",
    "Identity",
    "Profile",
    "ProfileStore",
    "Reply",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxState",
    "apply_attributes",
    "apply_event",
    "apply_purchase",
    "apply_value",
    "attribute_error",
    "attribute_object_error",
    "creation_refusal",
    "event_object_error",
    "identity_of",
    "mask_key",
    "parse_braze_time",
    "parse_json_object",
    "purchase_object_error",
    "render_page",
    "track_request_problem",
    "transactional_problem",
]
