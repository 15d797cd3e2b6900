"""Property-based fuzzing of every REST query parameter and of OPTIMADE's filter language: never a 5xx, and every 400
says in words what is wrong.

Values mix random unicode, huge and non-finite numbers, SQL-looking text, NUL bytes and near-misses of valid values;
OPTIMADE filters are built from the grammar's own pieces (fields, operators, literals, AND/OR/NOT, parentheses) so that
they reach the translator to Django ``Q`` objects, not just the parser. The Django test client re-raises any exception a
view lets escape, so a crash fails the test as surely as a 500.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.filters import MaterialFilterSet

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("GNOMON_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NASTY = [
    "' OR 1=1 --", "1; DROP TABLE catalog_material; --", "\" OR \"\"=\"", "%", "_", "\\", "\\x00", "\x00", "a\x00b",
    "NaN", "nan", "Infinity", "-inf", "1e309", "-1e309", "9" * 40, "-" + "9" * 40, "0x10", "1_000", "١٢", "", " ",
    "Li,,Fe", ",", "Li-*-*-*-*-*-*-*-*-*-*-*-*", "*", "-", "true,false", "TRUE", "💎", "Ω", "null", "[]", "{}",
    "Li" * 500, "A" * 5000, "\u202eLi", "Fe\n", "\t", "<script>alert(1)</script>", "../../etc/passwd",
]
VALID_LOOKING = ["Li,Fe,O", "O", "Fe-O", "Li-*-O", "SrTiO3", "ABO3", "AB", "2", "0.1", "-3.5", "true", "false", "225",
                 "cubic", "perov", "campaign", "7", "-energy_above_hull", "formula_reduced,nsites", "public_id",
                 "jsonl", "csv", "extxyz", "cif", "json", "poscar", "10", "1000"]
values = st.one_of(
    st.sampled_from(NASTY),
    st.sampled_from(VALID_LOOKING),
    st.text(max_size=80),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.lists(st.sampled_from(VALID_LOOKING + NASTY), min_size=2, max_size=4).map(",".join),
)

FILTER_PARAMS = sorted(MaterialFilterSet.base_filters)
LIST_PARAMS = [*FILTER_PARAMS, "fields", "limit", "cursor", "format", "page", "unknown"]
EXPORT_PARAMS = [*FILTER_PARAMS, "fields", "format"]


def _messages(body) -> list:
    if isinstance(body, dict):
        return [m for value in body.values() for m in _messages(value)]
    if isinstance(body, list):
        return [m for value in body for m in _messages(value)]
    return [body]


def assert_no_server_error(response) -> None:
    """< 500; a 400 carries at least one message, in words, for the caller to act on."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code < 500, (response.status_code, content[:500])
    if response.status_code == 400:
        messages = [m for m in _messages(response.json()) if isinstance(m, str)]
        assert messages, content[:500]
        assert all(len(m.strip()) >= 8 and any(c.isalpha() for c in m) for m in messages), messages


@FUZZ
@given(query=st.dictionaries(st.sampled_from(LIST_PARAMS), values, min_size=1, max_size=5))
def test_materials_list_never_fails_on_any_parameter(client, catalog_rows, query):
    assert_no_server_error(client.get("/api/v1/materials/", query))


@FUZZ
@given(query=st.dictionaries(st.sampled_from(EXPORT_PARAMS), values, min_size=1, max_size=4))
def test_export_never_fails_on_any_parameter(client, catalog_rows, query):
    assert_no_server_error(client.get("/api/v1/export/", query))


@FUZZ
@given(identifier=st.one_of(st.sampled_from(["gn-000001", "gn-999999", "gn-", "0", "-1"]), st.text(max_size=40)),
       query=st.dictionaries(st.sampled_from(["format", "fields"]), values, max_size=2))
def test_material_detail_never_fails(client, catalog_rows, identifier, query):
    from urllib.parse import quote

    assert_no_server_error(client.get(f"/api/v1/materials/{quote(identifier, safe='')}/", query))


@FUZZ
@given(chemsys=st.one_of(st.sampled_from(["Na-Cl", "Cl-Na", "O", "Sr-Ti-O", "Xx-O", "*", "-", "--"]),
                         st.text(max_size=40)),
       query=st.dictionaries(st.sampled_from(["scheme", "fields", "format"]), values, max_size=2))
def test_hull_never_fails(client, catalog_rows, chemsys, query):
    from urllib.parse import quote

    assert_no_server_error(client.get(f"/api/v1/chemsys/{quote(chemsys, safe='')}/hull/", query))


@FUZZ
@given(path=st.sampled_from(["/api/v1/campaigns/", "/api/v1/campaigns/{}/", "/api/v1/campaigns/{}/rounds/"]),
       identifier=values, query=st.dictionaries(st.sampled_from(["status", "limit", "cursor", "page"]), values,
                                                max_size=2))
def test_campaign_reads_never_fail(client, catalog_rows, path, identifier, query):
    from urllib.parse import quote

    assert_no_server_error(client.get(path.format(quote(identifier, safe="") or "x"), query))


# --- OPTIMADE ---------------------------------------------------------------------------------------------------------

OPTIMADE_FIELDS = ["id", "elements", "nelements", "chemical_formula_reduced", "chemical_formula_anonymous",
                   "chemical_formula_descriptive", "nsites", "space_group_it_number", "last_modified",
                   "structure_features", "lattice_vectors", "species", "elements_ratios", "nperiodic_dimensions",
                   "_gnomon_e_above_hull", "_gnomon_formation_energy_per_atom", "_gnomon_scheme", "_gnomon_origin",
                   "_gnomon_campaign", "_other_provider_x", "unknown_field", "ID", "elements.name"]
string_literal = st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
number_literal = st.one_of(st.integers(min_value=-(10**30), max_value=10**30).map(str),
                           st.floats(allow_nan=False, allow_infinity=False).map(repr),
                           st.sampled_from(["1e999", "-1e999", "0", "-0", "2.5", ".5", "5.", "1e-400"]))
literal = st.one_of(string_literal, number_literal, st.sampled_from(['"Si"', '"O"', '"SrTiO3"', '"A3BC"', "TRUE"]))
literal_list = st.lists(literal, min_size=1, max_size=4).map(", ".join)


@st.composite
def comparison(draw) -> str:
    field = draw(st.sampled_from(OPTIMADE_FIELDS))
    kind = draw(st.sampled_from(["cmp", "reverse", "has", "string", "known", "length"]))
    if kind == "cmp":
        return f"{field} {draw(st.sampled_from(['=', '!=', '<', '<=', '>', '>=']))} {draw(literal)}"
    if kind == "reverse":
        return f"{draw(literal)} {draw(st.sampled_from(['=', '<', '>=']))} {field}"
    if kind == "has":
        return f"{field} HAS {draw(st.sampled_from(['', 'ALL ', 'ANY ', 'ONLY ']))}{draw(literal_list)}"
    if kind == "string":
        return f"{field} {draw(st.sampled_from(['CONTAINS', 'STARTS WITH', 'STARTS', 'ENDS WITH', 'ENDS']))} " \
               f"{draw(literal)}"
    if kind == "known":
        return f"{field} IS {draw(st.sampled_from(['KNOWN', 'UNKNOWN']))}"
    return f"{field} LENGTH {draw(st.sampled_from(['', '>= ', '< ']))}{draw(number_literal)}"


filters = st.recursive(
    comparison(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" AND ", " OR "]), inner).map("".join),
        inner.map(lambda f: f"NOT {f}"),
        inner.map(lambda f: f"({f})"),
    ),
    max_leaves=6,
)


def assert_optimade_answer(response) -> None:
    """< 500, or one of the spec's own codes (501 unsupported filter or parameter, 553 unsupported version); an error
    response is JSON:API with a detail that says what is wrong."""
    assert response.status_code < 500 or response.status_code in (501, 553), (response.status_code,
                                                                              response.content[:500])
    if response.status_code >= 400:
        errors = response.json()["errors"]
        assert errors and all(len(e.get("detail", "").strip()) >= 8 for e in errors), errors


@FUZZ
@given(text=st.one_of(filters, st.text(max_size=120), st.sampled_from(NASTY)))
def test_optimade_filter_never_fails(client, catalog_rows, text):
    response = client.get("/optimade/v1/structures", {"filter": text})
    assert_optimade_answer(response)
    assert response.status_code in (200, 400, 501), (text, response.status_code, response.content[:300])


@FUZZ
@given(query=st.dictionaries(
    st.sampled_from(["page_limit", "page_offset", "sort", "response_fields", "response_format", "page_number",
                     "page_cursor", "filter", "email_address", "include", "api_hint"]),
    values, min_size=1, max_size=4,
))
def test_optimade_query_parameters_never_fail(client, catalog_rows, query):
    assert_optimade_answer(client.get("/optimade/v1/structures", query))


@pytest.mark.parametrize("url", [
    "/api/v1/materials/gn-000001%00/", "/api/v1/materials/?formula=Na%00Cl", "/api/v1/export/?origin=a%00",
    "/optimade/v1/structures/gn-000001%00", '/optimade/v1/structures?filter=id%3D%22a%00%22', "/materials/gn%00/",
])
def test_nul_bytes_in_urls_are_a_clear_400_not_a_database_error(client, catalog_rows, url):
    """PostgreSQL text cannot hold NUL; found by the fuzzer as a 500 on the material detail page."""
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize("name", ["page_offset", "page_limit"])
def test_optimade_integers_beyond_bigint_are_400(client, catalog_rows, name):
    """A page_offset of 10⁴⁰ used to reach PostgreSQL's OFFSET and fail there (bigint out of range → 500)."""
    response = client.get("/optimade/v1/structures", {name: str(10**40)})
    assert response.status_code in (400, 403)
    assert name in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("literal", ["1e999", "-1e999"])
@pytest.mark.parametrize("field", ["nelements", "nsites", "_gnomon_e_above_hull", "_gnomon_campaign"])
def test_optimade_infinite_numbers_are_400(client, catalog_rows, field, literal):
    """'nelements > 1e999' parses as infinity; int(inf) used to raise OverflowError (500). Found by a deeper fuzz run."""
    operator = "=" if field == "_gnomon_campaign" else ">"
    response = client.get("/optimade/v1/structures", {"filter": f"{field} {operator} {literal}"})
    assert response.status_code == 400
    assert "finite" in response.json()["errors"][0]["detail"]


@pytest.mark.parametrize("url", ["/api/v1/campaigns/¹/", "/api/v1/campaigns/¹8/rounds/", "/materials/?spacegroup=²"])
def test_unicode_digits_are_not_numbers(client, catalog_rows, url):
    """str.isdigit() accepts superscripts that int() refuses: found by the fuzzer as a ValueError (500)."""
    response = client.get(url)
    assert response.status_code in (200, 400, 404)
    assert response.status_code != 200 or "not a space group" in response.content.decode()


PAGE_PARAMS = ["q", "chemsys", "crystal_system", "formula", "elements", "exclude_elements", "is_stable", "ordering",
               "origin", "page", "page_size", "spacegroup", "spacegroup_number", "e_above_hull_max", "nelements"]


@FUZZ
@given(query=st.dictionaries(st.sampled_from(PAGE_PARAMS), values, min_size=1, max_size=4))
def test_catalog_browser_never_fails_on_any_parameter(client, catalog_rows, query):
    """The public HTML browser parses its own parameters (frontend/params.py); same contract: never a 5xx."""
    response = client.get("/materials/", query)
    assert response.status_code < 500, (response.status_code, response.content[:300])


@FUZZ
@given(chemsys=st.one_of(st.sampled_from(["Na-Cl", "O", "Sr-Ti-O", "Xx-O", "-", "*"]), st.text(max_size=30)),
       query=st.dictionaries(st.sampled_from(["scheme", "highlight", "show_unstable"]), values, max_size=2))
def test_phase_diagram_page_never_fails(client, catalog_rows, chemsys, query):
    from urllib.parse import quote

    response = client.get(f"/phase-diagrams/{quote(chemsys, safe='') or 'x'}/", query)
    assert response.status_code < 500, (response.status_code, response.content[:300])
