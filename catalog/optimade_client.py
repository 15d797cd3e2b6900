"""Reading structures from any OPTIMADE provider (standard library HTTP; follows ``links.next``).

An entry that cannot be turned into a crystal (invalid by the specification's models, no positions, unknown species)
comes back as a ``RemoteStructure`` with ``error`` set and no structure: the caller reports it and goes on. A page
request that fails on the network, a timeout, HTTP 429 or a 5xx is retried with back-off before the import stops.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

from pymatgen.core import Structure

USER_AGENT = "gnomon-import-optimade/0.1"
STRUCTURE_FIELDS = (
    "lattice_vectors", "cartesian_site_positions", "species_at_sites", "species", "dimension_types",
    "nperiodic_dimensions", "nsites", "chemical_formula_reduced", "structure_features", "last_modified",
)


class OptimadeClientError(RuntimeError):
    """The provider could not be reached or answered something that is not OPTIMADE."""


PAGE_RETRIES = 4  # attempts per page request before the import stops (back-off 1, 2, 4 s)
RETRY_HTTP_CODES = {429, 500, 502, 503, 504}


@dataclass
class RemoteStructure:
    id: str
    structure: Structure | None  # None when the entry could not be read: ``error`` says why
    attributes: dict
    url: str
    error: str = ""


def versioned_base(url: str) -> str:
    """'https://host/optimade' → 'https://host/optimade/v1'; a URL already ending in /vN is kept."""
    url = url.rstrip("/")
    return url if re.search(r"/v\d+(\.\d+){0,2}$", url) else f"{url}/v1"


def _get_json(url: str, timeout: float, retries: int = PAGE_RETRIES) -> dict:
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise OptimadeClientError(f"only http(s) URLs are supported, not {url!r}")
    headers = {"User-Agent": USER_AGENT, "Accept": "application/vnd.api+json"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked above
    for attempt in range(1, retries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_HTTP_CODES or attempt == retries:
                body = exc.read().decode(errors="replace")[:500]
                raise OptimadeClientError(f"{url} answered HTTP {exc.code}: {body}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == retries:
                raise OptimadeClientError(f"{url}: {exc} (after {retries} attempts)") from exc
        except json.JSONDecodeError as exc:
            raise OptimadeClientError(f"{url}: not JSON ({exc})") from exc
        time.sleep(2 ** (attempt - 1))
    raise OptimadeClientError(f"{url}: no answer")  # pragma: no cover - the loop returns or raises


def entry_problem(exc: Exception) -> str:
    """One line saying why an entry is unreadable: the first field a validation error names, or the exception."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ()))
            count = len(errors())
            return f"invalid entry: {where}: {first.get('msg')}" + (f" (and {count - 1} more)" if count > 1 else "")
        except (TypeError, IndexError, KeyError):
            pass
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def to_pymatgen(entry: dict) -> Structure:
    """An OPTIMADE structure resource → pymatgen Structure (via the optimade package's adapter)."""
    from optimade.adapters import Structure as OptimadeStructure

    return OptimadeStructure(entry).as_pymatgen


def iter_structures(base_url: str, filter_: str = "", *, page_limit: int = 100, limit: int | None = None,
                    timeout: float = 60.0) -> Iterator[RemoteStructure]:
    """Every structure matching ``filter_`` (all pages), at most ``limit``."""
    base = versioned_base(base_url)
    params = {"page_limit": str(page_limit), "response_fields": ",".join(STRUCTURE_FIELDS)}
    if filter_:
        params["filter"] = filter_
    url: str | None = f"{base}/structures?{urllib.parse.urlencode(params)}"
    seen = 0
    while url:
        page = _get_json(url, timeout)
        if "data" not in page or not isinstance(page["data"], list):
            raise OptimadeClientError(f"{url} did not return a list of structures: {str(page)[:300]}")
        for entry in page["data"]:
            if limit is not None and seen >= limit:
                return
            seen += 1
            entry_id = str(entry.get("id", "")) if isinstance(entry, dict) else ""
            attributes = (entry.get("attributes") if isinstance(entry, dict) else None) or {}
            link = f"{base}/structures/{entry_id}"
            try:
                structure = to_pymatgen(entry)
            except Exception as exc:  # noqa: BLE001 - one bad entry is reported; the import goes on
                yield RemoteStructure(entry_id or f"entry {seen}", None, attributes, link, error=entry_problem(exc))
                continue
            yield RemoteStructure(entry_id, structure, attributes, link)
        next_link = (page.get("links") or {}).get("next")
        url = next_link.get("href") if isinstance(next_link, dict) else next_link


def provider_prefix(base_url: str, timeout: float = 60.0) -> str:
    """The provider's prefix from ``/info`` (used as the dataset name), or the host name."""
    try:
        info = _get_json(f"{versioned_base(base_url)}/info", timeout)
        prefix = ((info.get("meta") or {}).get("provider") or {}).get("prefix")
    except OptimadeClientError:
        prefix = None
    return prefix or urllib.parse.urlparse(base_url).hostname or "optimade"
