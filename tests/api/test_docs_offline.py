import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_api_docs_use_our_own_static_files(client, url):
    html = client.get(url).content.decode()
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert "drf_spectacular_sidecar" in html or "/static/" in html
