"""/docs and /redoc work without internet: every asset they load is served by the app, and
neither the pages nor the assets they load reach for another host."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

#: an absolute URL inside a JS or CSS asset
URL = re.compile(r"""https?://[^\s"'`()<>\\]+""")
#: how a stylesheet loads something: url(...) and @import
CSS_LOADS = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])(https?://[^'")\s]+)""")
#: what a script would fetch or insert as a resource: an absolute URL ending in an asset type,
#: or on a host that serves assets (fonts, CDNs)
ASSET = re.compile(r"\.(?:js|mjs|css|woff2?|ttf|otf|eot|png|jpe?g|gif|svg|ico|webp)(?:[?#].*)?$")
ASSET_HOSTS = ("fonts.googleapis.com", "fonts.gstatic.com", "cdn.jsdelivr.net", "unpkg.com")
#: asset URLs a bundle names that the docs never load: ReDoc's footer logo (an <img>, blocked
#: by the pages' Content-Security-Policy, hidden on error) and marked.js's home page link
KNOWN = {"https://cdn.redoc.ly/redoc/logo-mini.svg", "https://marked.js.org"}


class References(HTMLParser):
    """Every src, href and spec-url of a page, and the URLs its inline scripts name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls += re.findall(r"""(?:url|spec-url)\s*[:=]\s*['"]([^'"]+)['"]""", data)
            self.urls += URL.findall(data)


def external(url: str) -> bool:
    return urlsplit(url).netloc not in ("", "test")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_load_only_what_the_app_serves(api: httpx.AsyncClient, page: str) -> None:
    response = await api.get(page)
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    parser = References()
    parser.feed(response.text)
    assert parser.urls, "the page references its assets"
    assert not [u for u in parser.urls if external(u)], parser.urls
    scripts = 0
    for reference in parser.urls:
        url = urljoin(f"http://test{page}", reference)
        asset = await api.get(url)
        assert asset.status_code == 200, url
        text = asset.text
        if reference.endswith(".css"):
            assert not CSS_LOADS.findall(text), reference
        if reference.endswith(".js"):
            scripts += 1
            fetched = {
                u for u in URL.findall(text) if ASSET.search(u) or urlsplit(u).netloc in ASSET_HOSTS
            }
            assert fetched <= KNOWN, (reference, fetched - KNOWN)
    assert scripts == 1
    assert "/openapi.json" in parser.urls


async def test_swagger_ui_does_not_ask_the_public_validator(api: httpx.AsyncClient) -> None:
    page = (await api.get("/docs")).text
    assert '"validatorUrl": null' in page
