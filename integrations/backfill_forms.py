"""Forms of the backfill pages: the upload, and how the file's rows become Komo bodies."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from integrations import backfill_csv
from integrations.models import Backfill
from integrations.spec import DEFAULT_EVENTS, DOCUMENTED_EVENTS

DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3


def max_upload_bytes() -> int:
    return int(getattr(settings, "BACKFILL_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))


class BackfillUploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV export"),
        help_text=_("UTF-8 (with or without BOM), comma or semicolon separated, a header line."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > max_upload_bytes():
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB; use the command line (manage.py "
                  "hub_backfill) for it.") % {"mb": max_upload_bytes() // 1024**2}
            )  # fmt: skip
        return upload


class BackfillChoicesForm(forms.Form):
    """One Komo key per column (auto-matched), the event kind, the id and time columns."""

    event = forms.CharField(
        label=_("The rows are"), max_length=200,
        widget=forms.TextInput(attrs={"list": "event-kinds"}),
        help_text=_("The Komo event kind each row represents (unless a column is mapped to "
                    "“event”)."),
    )  # fmt: skip
    id_column = forms.ChoiceField(
        label=_("Unique id"), required=False,
        help_text=_("Importing the same rows again queues nothing: each id is stored once."),
    )  # fmt: skip
    time_column = forms.ChoiceField(label=_("Time column"))
    time_format = forms.CharField(
        label=_("Time format"), max_length=100,
        widget=forms.TextInput(attrs={"list": "time-formats"}),
        help_text=_("iso (2026-03-14T09:26:53Z), unix, unix_ms, or a pattern such as "
                    "%d/%m/%Y %H:%M; times without a zone are UTC."),
    )  # fmt: skip

    def __init__(self, *args: Any, backfill: Backfill, known_keys: list[str], **kwargs: Any):
        kwargs.setdefault(
            "initial",
            {
                "event": backfill.event, "id_column": backfill.id_column,
                "time_column": backfill.time_column, "time_format": backfill.time_format,
                **{column_field(i): backfill.columns.get(c, "")
                   for i, c in enumerate(backfill.header)},
            },
        )  # fmt: skip
        super().__init__(*args, **kwargs)
        self.backfill = backfill
        columns = [(c, c) for c in backfill.header]
        self.fields["id_column"].choices = [
            (backfill_csv.DERIVED_ID, _("Derive it from the row (a stable hash)")), *columns
        ]
        self.fields["time_column"].choices = columns
        self.known_keys = known_keys
        self.event_choices = list(
            dict.fromkeys([*DEFAULT_EVENTS, *(backfill.hub.events or ()), *DOCUMENTED_EVENTS])
        )
        for index, column in enumerate(backfill.header):
            self.fields[column_field(index)] = forms.CharField(
                label=column, required=False, max_length=200,
                widget=forms.TextInput(attrs={"list": "komo-keys", "data-column": column}),
            )  # fmt: skip

    def column_rows(self) -> list[tuple[str, Any]]:
        return [(c, self[column_field(i)]) for i, c in enumerate(self.backfill.header)]

    def columns(self) -> dict[str, str]:
        return {
            column: (self.cleaned_data.get(column_field(i)) or "").strip()
            for i, column in enumerate(self.backfill.header)
        }


def column_field(index: int) -> str:
    return f"column_{index}"
