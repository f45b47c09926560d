"""Every page a signed-in person can reach, for the security tests (escaping, CSRF, secrets).

``crawl`` walks the portal from its start pages and the admin index with the Django test client,
following every same-site link (GET only, one visit per path, bounded), and returns each page's
HTML. ``post_forms`` lists the POST forms found on those pages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from django.test import Client

SKIP_PARTS = ("/logout", "/i18n/", "/static/", "/api/v1/", "/jsi18n/")
MAX_PAGES = 400
FIELD_TAGS = frozenset({"input", "textarea", "select", "button"})


@dataclass
class Form:
    page: str
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        elif tag == "form":
            self._form = Form(page="", action=values.get("action", ""),
                              method=values.get("method", "get").lower())
            self.forms.append(self._form)
        elif self._form is not None and tag in FIELD_TAGS and values.get("name"):
            self._form.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@dataclass
class Page:
    url: str
    status: int
    html: str
    links: list[str]
    forms: list[Form]


def _same_site(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and parts.path.startswith("/")


def _parse(url: str, html: str) -> tuple[list[str], list[Form]]:
    parser = _PageParser()
    parser.feed(html)
    links = [urljoin(url, href.split("#")[0]) for href in parser.links]
    for form in parser.forms:
        form.page = url
        form.action = urljoin(url, form.action or url)
    return [link for link in links if link and _same_site(link)], parser.forms


def crawl(client: Client, start: Iterable[str] = ("/", "/admin/"),
          max_pages: int = MAX_PAGES) -> list[Page]:
    """Breadth-first over same-site links; each path once (the first query string seen wins,
    start URLs are always visited)."""
    queue = deque(start)
    seen_paths: set[str] = set()
    seen_urls: set[str] = set()
    pages: list[Page] = []
    while queue and len(pages) < max_pages:
        url = queue.popleft()
        path = urlsplit(url).path
        if url in seen_urls or any(part in path for part in SKIP_PARTS):
            continue
        if path in seen_paths and url not in start:
            continue
        seen_urls.add(url)
        seen_paths.add(path)
        response = client.get(url)
        content_type = response.get("Content-Type", "")
        html = response.content.decode("utf-8", "replace") if "html" in content_type else ""
        links, forms = _parse(url, html)
        pages.append(Page(url, response.status_code, html, links, forms))
        queue.extend(link for link in links if link not in seen_urls)
    return pages


def post_forms(pages: Iterable[Page]) -> list[Form]:
    """Every POST form, once per (action, page path)."""
    found: dict[tuple[str, str], Form] = {}
    for page in pages:
        for form in page.forms:
            if form.method == "post":
                found.setdefault((form.action, urlsplit(page.url).path), form)
    return list(found.values())
