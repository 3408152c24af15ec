"""Issue #4: with no allowlist, internal and tricky URLs are refused when saved (422)."""
import pytest

import tw

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:9/hook",
    "http://[::1]/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.10.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::7f00:1]/",
    "ftp://example.com/hook",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "//evil.example/hook",
]


@pytest.fixture(scope="module")
def srv():
    s = tw.Server(allow_cidrs=False)
    yield s
    s.stop()


@pytest.mark.parametrize("url", REFUSED)
def test_internal_urls_are_refused(srv, admin, url):
    c = tw.make_user(srv, admin, "customer")
    r = c.api.call("PUT", "/api/users/me/webhook", {"webhook_url": url})
    assert r.status_code == 422, f"{url} -> {r.status_code} {r.text}"
    assert c.api.call("GET", "/api/users/me/webhook").status_code == 404, "nothing was saved"


def test_relative_path_is_accepted_without_allowlist(srv, admin):
    c = tw.make_user(srv, admin, "customer")
    r = c.api.call("PUT", "/api/users/me/webhook", {"webhook_url": "/api/notifications/webhooks/notifications"})
    assert r.status_code == 200, r.text
