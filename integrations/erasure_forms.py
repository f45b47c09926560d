"""The form support fills in to erase one person (see ``views_erasure``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from integrations.models import Hub

MAX_IDENTIFIER_CHARS = 320  # the longest email address there can be


class ErasureForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Identify the person by"),
        choices=(
            ("email", _("Email address (whole)")),
            ("phone", _("Phone number")),
            ("external_id", _("External ID")),
        ),
        initial="email",
    )
    value = forms.CharField(
        label=_("Identifier"), max_length=MAX_IDENTIFIER_CHARS, strip=True,
        help_text=_("Exactly as the person gave it; an email must be whole. Phones are read "
                    "with each hub's default region."),
    )
    hub = forms.ModelChoiceField(
        label=_("Hub"), queryset=Hub.objects.none(), required=False, to_field_name="slug",
        empty_label=_("Every hub I support"),
    )
    braze = forms.BooleanField(
        label=_("Also delete the profile in Braze"), required=False,
        help_text=_("Needs an API key with the users.delete permission. Cannot be undone."),
    )

    def __init__(self, *args: Any, hubs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hub"].queryset = hubs
        self.fields["hub"].error_messages["invalid_choice"] = _(
            "You cannot erase people in that hub, or it does not exist."
        )
