"""Recording who was shown a submission's personal data (``AccessRecord``).

Pages call ``access_record`` when, and only when, they render a submission's personal data
(payload, person, Braze requests): the portal's submission page, the preview of a picked
submission, the admin's submission page, the erasure form prefilled from a submission. Lists
that show masked identifiers record nothing.
"""

from __future__ import annotations

from typing import Any

from integrations.models import AccessRecord, Submission


def access_record(*, user: Any, submission: Submission, page: str) -> AccessRecord:
    authenticated = bool(getattr(user, "pk", None))
    return AccessRecord.objects.create(
        user=user if authenticated else None,
        username=user.get_username() if authenticated else "",
        hub_id=submission.hub_id,
        submission=submission,
        submission_public_id=submission.public_id,
        page=page[:40],
    )
