"""The Braze instance list and the endpoint allow-list (the SSRF guard)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from integrations.braze.instances import (
    BRAZE_INSTANCES,
    BRAZE_REST_HOSTS,
    BrazeInstance,
    endpoint_allowed,
    instance_for_endpoint,
    normalize_endpoint,
)

SANDBOX = "http://127.0.0.1:9400"


def test_instance_list_matches_braze_docs() -> None:
    # given the REST hosts listed in braze-api.md §5
    expected = {f"rest.iad-0{n}.braze.com" for n in range(1, 9)} | {
        "rest.us-10.braze.com",
        "rest.fra-01.braze.eu",
        "rest.fra-02.braze.eu",
        "rest.au-01.braze.com",
        "rest.id-01.braze.com",
        "rest.jp-01.braze.com",
        "rest.kr-01.braze.com",
    }

    # then the module knows exactly those, each once, as https base URLs without a path
    assert expected == BRAZE_REST_HOSTS
    assert len(BRAZE_INSTANCES) == len(expected)
    for instance in BRAZE_INSTANCES:
        parts = urlsplit(instance.rest_endpoint)
        assert (parts.scheme, parts.path, parts.query) == ("https", "", "")
    assert "rest.iad-09.braze.com" not in BRAZE_REST_HOSTS
    assert len({i.code for i in BRAZE_INSTANCES}) == len(BRAZE_INSTANCES)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://rest.iad-01.braze.com", "https://rest.iad-01.braze.com"),
        ("  https://rest.iad-01.braze.com/ \n", "https://rest.iad-01.braze.com"),
        ("HTTPS://REST.IAD-01.Braze.COM//", "https://rest.iad-01.braze.com"),
        ("http://LOCALHOST:9400/Some/Path/", "http://localhost:9400/Some/Path"),
        ("https://User@Host.example", "https://User@host.example"),
        ("not a url/", "not a url"),
    ],
)
def test_normalize_endpoint(raw: str, normalized: str) -> None:
    assert normalize_endpoint(raw) == normalized


def test_instance_for_endpoint_finds_the_instance_after_normalising() -> None:
    instance = instance_for_endpoint(" HTTPS://rest.fra-02.braze.eu/ ")

    assert instance is not None
    assert instance.code == "EU-02"
    assert instance_for_endpoint("https://rest.fra-02.braze.eu.evil.com") is None


@pytest.mark.parametrize("instance", BRAZE_INSTANCES, ids=lambda i: i.code)
def test_every_braze_instance_is_allowed(instance: BrazeInstance) -> None:
    assert endpoint_allowed(instance.rest_endpoint, ())


@pytest.mark.parametrize(
    "url",
    [
        "https://REST.iad-01.braze.com",
        "https://rest.iad-01.braze.com/",
        " https://rest.iad-01.braze.com ",
    ],
)
def test_braze_host_spelled_loosely_is_allowed(url: str) -> None:
    assert endpoint_allowed(url, ())


@pytest.mark.parametrize(
    "url",
    [
        "http://rest.iad-01.braze.com",  # not https
        "https://rest.iad-01.braze.com.evil.com",  # suffix trick
        "https://evil.com/rest.iad-01.braze.com",
        "https://user@rest.iad-01.braze.com",  # userinfo
        "https://rest.iad-01.braze.com@evil.com",  # host is evil.com
        "https://rest.iad-01.braze.com:443",  # explicit port
        "https://rest.iad-01.braze.com:8443",
        "https://rest.iad-01.braze.com/users/track",  # path
        "https://rest.iad-01.braze.com?x=1",  # query
        "https://rest.iad-01.braze.com#frag",
        "https://rest.iad-01.braze.com\\@evil.com",  # parser confusion
        "https://rest.iad-01.braze.com./",  # trailing dot
        "https://rest.iad-09.braze.com",  # no such instance
        "https://sdk.iad-01.braze.com",  # SDK host, not REST
        "https://rest.iad-01.braze.com\r\nX: y",
        "ftp://rest.iad-01.braze.com",
        "rest.iad-01.braze.com",
        "",
        "   ",
        SANDBOX,  # not allowed without the extra prefix
    ],
)
def test_anything_else_is_refused_without_extra_prefixes(url: str) -> None:
    assert not endpoint_allowed(url, ())


@pytest.mark.parametrize(
    "url", [SANDBOX, SANDBOX + "/", "HTTP://127.0.0.1:9400", SANDBOX + "/braze"]
)
def test_extra_prefix_allows_the_sandbox(url: str) -> None:
    assert endpoint_allowed(url, [SANDBOX])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9400@evil.com",  # the prefix is only userinfo here
        "http://127.0.0.1:9400@127.0.0.1:9400",  # userinfo, even towards the right host
        "http://127.0.0.1:9400.evil.com",
        "http://127.0.0.1:94001",
        "http://127.0.0.1:9401",
        "https://127.0.0.1:9400",  # other scheme than the prefix
        "http://127.0.0.1:9400?x=1",
        "http://127.0.0.1:9400#x",
        "http://127.0.0.10:9400",
    ],
)
def test_extra_prefix_does_not_open_neighbours(url: str) -> None:
    assert not endpoint_allowed(url, [SANDBOX])


def test_prefix_without_port_allows_any_port_on_that_host_only() -> None:
    # given the test settings' style of prefix, "http://127.0.0.1:"
    prefixes = ["http://127.0.0.1:", "http://localhost:"]

    assert endpoint_allowed("http://127.0.0.1:41234", prefixes)
    assert endpoint_allowed("http://localhost:9400/", prefixes)
    assert not endpoint_allowed("http://127.0.0.1:80@evil.com", prefixes)
    assert not endpoint_allowed("http://localhost:9400.evil.com", prefixes)
    assert not endpoint_allowed("http://localhost.evil.com:9400", prefixes)


def test_prefix_with_path_respects_the_path_boundary() -> None:
    prefixes = ["https://proxy.internal/braze/"]

    assert endpoint_allowed("https://proxy.internal/braze", prefixes)
    assert endpoint_allowed("https://proxy.internal/braze/eu", prefixes)
    assert not endpoint_allowed("https://proxy.internal/braze-evil", prefixes)


@pytest.mark.parametrize("prefix", ["", "   ", "ftp://127.0.0.1:9400", "http://u@127.0.0.1:9400"])
def test_useless_or_unsafe_prefixes_allow_nothing(prefix: str) -> None:
    assert not endpoint_allowed("ftp://127.0.0.1:9400", [prefix])
    assert not endpoint_allowed("http://u@127.0.0.1:9400", [prefix])
    assert not endpoint_allowed("https://evil.com", [prefix])


def test_non_string_is_refused() -> None:
    assert not endpoint_allowed(None, [SANDBOX])  # type: ignore[arg-type]
