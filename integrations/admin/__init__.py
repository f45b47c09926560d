"""The Django admin: the marketer's hub configuration and the support staff's submission tool.

Split by role: ``hubs`` (hubs, Braze connection, field mappings, memberships), ``support``
(submissions, delivery attempts, configuration changes) and ``common`` (site titles and the
access mixins both use). Importing this package registers every model admin.
"""

from integrations.admin.common import HubChildInlineMixin, HubScopedAdmin
from integrations.admin.hubs import (
    BrazeConnectionInline,
    FieldMappingInline,
    HubAdmin,
    HubMembershipAdmin,
)
from integrations.admin.privacy import AccessRecordAdmin, ErasureRecordAdmin
from integrations.admin.support import (
    RESPONSE_PREVIEW_CHARS,
    ConfigChangeAdmin,
    DeliveryAttemptAdmin,
    SubmissionAdmin,
    redeliver_message,
    status_badge,
)

__all__ = [
    "AccessRecordAdmin",
    "ErasureRecordAdmin",
    "RESPONSE_PREVIEW_CHARS",
    "BrazeConnectionInline",
    "ConfigChangeAdmin",
    "DeliveryAttemptAdmin",
    "FieldMappingInline",
    "HubAdmin",
    "HubChildInlineMixin",
    "HubMembershipAdmin",
    "HubScopedAdmin",
    "SubmissionAdmin",
    "redeliver_message",
    "status_badge",
]
