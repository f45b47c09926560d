"""German and Japanese: complete catalogs, compiled .mo files that match them, translated pages,
Braze/Komo names left alone, and a catalog that is not behind the code (makemessages)."""

from __future__ import annotations

import ast
import gettext
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

BASE_DIR = Path(settings.BASE_DIR)
LOCALE_DIR = BASE_DIR / "locale"
LANGUAGES = ("de", "ja")
PLURAL_FORMS = {"de": "nplurals=2; plural=(n != 1);", "ja": "nplurals=1; plural=0;"}
# What makemessages scans: the same --ignore list as the documented command (docs/decisions.md).
MAKEMESSAGES_IGNORES = (".venv", "tests", "var", "test-artifacts")

# Everything that must survive translation unchanged: printf placeholders (%(name)s, %s, %d,
# %%), brace placeholders ({name}, {}) and anything in angle brackets (HTML tags, <formats>).
PLACEHOLDER = re.compile(
    r"%(?:\([^)]+\))?[#0 +-]?\d*(?:\.\d+)?[sdifrx%]"
    r"|\{\w*\}"
    r"|</?[A-Za-z][^<>]*>"
)


# --- a small .po reader (no third-party dependency) -------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def where(self) -> str:
        return " ".join(self.references) or "(no reference)"


def po_parse(path: Path) -> list[Entry]:
    """Entries of a .po file, header (msgid "") included, in file order."""
    entries: list[Entry] = []
    current = Entry()
    started = False
    last: tuple[str, int] = ("", 0)

    def flush() -> None:
        nonlocal current, started
        if started:
            entries.append(current)
        current, started = Entry(), False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            current.obsolete = True
            line = line[2:].strip()
            if not line:
                continue
        elif line.startswith("#"):
            if started and last[0] == "msgstr":
                flush()
            if line.startswith("#,"):
                current.flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            elif line.startswith("#:"):
                current.references.extend(line[2:].split())
            continue
        match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")$', line)
        if match:
            keyword, index, value = match.group(1), match.group(2), ast.literal_eval(match.group(3))
            if keyword == "msgid" and started and last[0] == "msgstr":
                flush()
            started = True
            if keyword.startswith("msgstr"):
                last = ("msgstr", int(index or 0))
                current.msgstr[last[1]] = value
            else:
                last = (keyword, 0)
                setattr(current, keyword, value)
            continue
        if line.startswith('"'):
            value = ast.literal_eval(line)
            if last[0] == "msgstr":
                current.msgstr[last[1]] += value
            else:
                setattr(current, last[0], getattr(current, last[0]) + value)
            continue
        raise AssertionError(f"{path}: cannot read line {raw!r}")
    flush()
    return entries


def po_messages(path: Path) -> list[Entry]:
    return [e for e in po_parse(path) if e.msgid and not e.obsolete]


def po_header(path: Path) -> Entry:
    return next(e for e in po_parse(path) if e.msgid == "" and not e.obsolete)


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text))


def catalog_problems(path: Path) -> list[str]:
    """Everything wrong with one catalog, one line per problem (empty: the catalog is fine)."""
    problems = []
    for entry in po_messages(path):
        label = f"{entry.where}: {entry.msgid!r}"
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {label}")
        if not entry.msgstr or any(not text.strip() for text in entry.msgstr.values()):
            problems.append(f"untranslated: {label}")
            continue
        if entry.msgid_plural is None:
            if placeholders(entry.msgstr[0]) != placeholders(entry.msgid):
                problems.append(f"placeholders differ: {label} -> {entry.msgstr[0]!r}")
        else:
            wanted = set(placeholders(entry.msgid) | placeholders(entry.msgid_plural))
            for index, text in entry.msgstr.items():
                if set(placeholders(text)) != wanted:
                    problems.append(f"placeholders differ in msgstr[{index}]: {label} -> {text!r}")
    return problems


def po_path(language: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / language / "LC_MESSAGES" / "django.po"


# --- (a) the catalogs ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_is_complete_and_keeps_every_placeholder(language):
    # given
    path = po_path(language)
    # when
    problems = catalog_problems(path)
    # then
    assert po_messages(path), f"{path} has no messages"
    assert problems == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_header_names_the_language_and_its_plural_forms(language):
    # given
    header = po_header(po_path(language))
    # when
    fields = dict(
        line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line
    )
    # then
    assert "fuzzy" not in header.flags
    assert fields["Language"] == language
    assert fields["Plural-Forms"] == PLURAL_FORMS[language]
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"


@pytest.mark.parametrize("language", LANGUAGES)
def test_plural_entries_have_one_form_per_plural_category(language):
    # given
    nplurals = int(re.search(r"nplurals=(\d+)", PLURAL_FORMS[language]).group(1))
    # when
    plural_entries = [e for e in po_messages(po_path(language)) if e.msgid_plural is not None]
    # then
    assert plural_entries
    for entry in plural_entries:
        assert sorted(entry.msgstr) == list(range(nplurals)), entry.msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_mo_file_matches_the_po_file(language):
    """The .mo is committed (no gettext needed at run time), so it must not lag behind the .po."""
    # given
    path = po_path(language)
    with path.with_suffix(".mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    # when
    stale = []
    for entry in po_messages(path):
        if "fuzzy" in entry.flags or not all(entry.msgstr.values()):
            continue  # msgfmt leaves these out; the completeness test reports them
        if entry.msgid_plural is None:
            got = (compiled.pgettext(entry.msgctxt, entry.msgid) if entry.msgctxt
                   else compiled.gettext(entry.msgid))
            if got != entry.msgstr[0]:
                stale.append(entry.msgid)
            continue
        for index, text in entry.msgstr.items():
            count = 1 if index == 0 else 2  # de: form 0 for 1, form 1 for 2; ja: form 0 always
            if compiled.ngettext(entry.msgid, entry.msgid_plural, count) != text:
                stale.append(entry.msgid)
    # then
    assert stale == [], "run `python manage.py compilemessages --ignore=.venv`"


# --- (b) pages in German and Japanese -----------------------------------------------------------


@pytest.fixture
def superuser_client(client, db):
    user = get_user_model().objects.create_superuser(
        username="lead", email="lead@example.com", password="pw-Secret-123"
    )
    client.force_login(user)
    return client


HUB_LIST_TEXT = {
    "en": ("Each hub carries one Komo Engagement Hub's submissions into Braze.", "Pending",
           "Braze connection", "Log out"),
    "de": ("Jeder Hub überträgt die Einsendungen eines Komo Engagement Hubs nach Braze.",
           "Ausstehend", "Braze-Verbindung", "Abmelden"),
    "ja": ("各ハブは、1つのKomo Engagement Hubの送信データをBrazeに連携します。", "配信待ち",
           "Braze接続", "ログアウト"),
}

LOGIN_TEXT = {
    "de": ("Komo → Braze-Portal", "Benutzername", "Anmelden"),
    "ja": ("Komo → Braze ポータル", "ユーザー名", "ログイン"),
}


def _html(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
def test_hub_list_follows_accept_language(superuser_client, make_hub, language):
    # given
    make_hub()
    # when
    html = _html(superuser_client.get(reverse("integrations:hub_list"),
                                      headers={"accept-language": language}))
    # then
    assert f'<html lang="{language}">' in html
    for text in HUB_LIST_TEXT[language]:
        assert text in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_hub_list_follows_the_language_cookie(superuser_client, make_hub, language):
    # given
    make_hub()
    superuser_client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    # when (the browser asks for English, the cookie wins)
    html = _html(superuser_client.get(reverse("integrations:hub_list"),
                                      headers={"accept-language": "en"}))
    # then
    assert f'<html lang="{language}">' in html
    for text in HUB_LIST_TEXT[language]:
        assert text in html
    assert HUB_LIST_TEXT["en"][0] not in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_login_page_is_translated(client, db, language):
    # when
    html = _html(client.get(reverse("admin:login"), headers={"accept-language": language}))
    # then
    for text in LOGIN_TEXT[language]:
        assert text in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_login_page_follows_the_language_cookie(client, db, language):
    # given
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    # when
    html = _html(client.get(reverse("admin:login")))
    # then
    for text in LOGIN_TEXT[language]:
        assert text in html


# --- (c) Braze and Komo names stay as they are --------------------------------------------------

MAPPING = re.compile(r'<span class="mapping">(.*?)</span>', re.S)
CODE = re.compile(r"<code[^>]*>(.*?)</code>", re.S)


def test_braze_and_komo_names_on_the_dashboard_are_identical_in_every_language(
    superuser_client, make_hub
):
    # given
    hub, _token = make_hub()
    url = reverse("integrations:hub_dashboard", args=[hub.slug])
    # when
    pages = {
        language: _html(superuser_client.get(url, headers={"accept-language": language}))
        for language in ("en", *LANGUAGES)
    }
    # then: the page is translated ...
    assert "Field mappings" in pages["en"]
    assert "Feldzuordnungen" in pages["de"]
    assert "フィールドマッピング" in pages["ja"]
    # ... but the mapping list and every code value (attribute names, event names, slug,
    # alias_label) are the same, character for character.
    mappings = {language: MAPPING.findall(html) for language, html in pages.items()}
    codes = {language: CODE.findall(html) for language, html in pages.items()}
    for attribute in ("first_name", "email_subscribe", "dob"):
        assert f"<code>{attribute}</code>" in "".join(mappings["en"])
    assert "CompetitionEntrySuccess" in codes["en"]
    assert "alias_label" in pages["de"] and "alias_label" in pages["ja"]
    assert mappings["de"] == mappings["en"] == mappings["ja"]
    assert codes["de"] == codes["en"] == codes["ja"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_braze_and_komo_names(language):
    """Wherever an English message names a Braze/Komo identifier, the translation names it too."""
    # given
    protected = (
        "external_id", "braze_id", "alias_label", "_update_existing_only", "users.track",
        "CompetitionEntrySuccess", "X-Komo-Signature", "FIELD_ENCRYPTION_KEYS", "unsubscribed",
        "subscribed", "Braze", "Komo", "Engagement Hub", "/users/track", "rest.iad-01.braze.com",
    )
    # when
    missing = [
        (entry.msgid, name)
        for entry in po_messages(po_path(language))
        for name in protected
        if name in entry.msgid and any(name not in text for text in entry.msgstr.values())
    ]
    # then
    assert missing == []


# --- (d) the catalog is not behind the code -----------------------------------------------------


def test_makemessages_finds_no_untranslated_message(tmp_path):
    """Re-extract the messages of a snapshot of the code into a copy of locale/; every message
    must already be translated. Fails when a new _()/{% translate %} string has no translation
    yet: run makemessages (docs/decisions.md), translate, compilemessages."""
    if not (shutil.which("xgettext") and shutil.which("msgmerge")):
        pytest.skip("GNU gettext is not installed")
    # given: a copy of what makemessages scans, with its own locale/ (LOCALE_PATHS follows
    # BASE_DIR, which is the copy because the settings module is imported from there)
    copy = tmp_path / "project"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo")
    for name in ("integrations", "portal", "templates", "locale"):
        if (BASE_DIR / name).exists():
            shutil.copytree(BASE_DIR / name, copy / name, ignore=skip)
    shutil.copy2(BASE_DIR / "manage.py", copy / "manage.py")
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
    }
    ignores = [f"--ignore={pattern}" for pattern in MAKEMESSAGES_IGNORES]
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", *[f"-l{lang}" for lang in LANGUAGES],
         *ignores],
        cwd=copy, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    # then
    assert result.returncode == 0, result.stderr
    for language in LANGUAGES:
        problems = [p for p in catalog_problems(po_path(language, copy / "locale"))
                    if p.startswith(("untranslated", "fuzzy"))]
        assert problems == [], f"{language}: new or changed messages without a translation"
