"""The simulated Xporter server over real HTTP: the provider guide's examples, literally, every
status code in its table, and each switchable quirk and fault."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from snapshotter.cli import cli
from snapshotter.sim.quirks import PageFault, Quirks
from snapshotter.sim.school import GUIDE_CLASS_ID, GUIDE_PUPIL_ID, generate
from snapshotter.sim.server import SimServer

GUIDE_BASIC = "Basic cGFydG5lci1ycHwzMjgxMTEwOnN1cGVyLXNlY3JldA=="
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Request contains an invalid client ID or secret",
}


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def token_for(sim: SimServer, authorization: str = GUIDE_BASIC) -> str:
    answer = httpx.post(
        f"{sim.base_url}/auth/token",
        headers={"Authorization": authorization, "Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


class Api:
    """A logged-in client of one simulated server, as the guide describes."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self.token = token_for(sim)
        self.client = httpx.Client(timeout=10)

    def get(self, path_and_query: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        return self.client.get(f"{self.sim.base_url}{path_and_query}", headers=headers, **kwargs)

    def records(self, path_and_query: str) -> list[dict[str, Any]]:
        answer = self.get(path_and_query)
        assert answer.status_code == 200, answer.text
        collection = path_and_query.lstrip("/").split("?")[0]
        return answer.json()[collection]


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [record["sourcedId"] for record in records]


def minor_code(body: dict[str, Any]) -> str:
    return body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]


def read_all_pages(api: Api, collection: str, limit: int) -> list[dict[str, Any]]:
    """A naive offset pager: stops at an empty page."""
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = api.records(f"/{collection}?limit={limit}&offset={offset}")
        if not page:
            return found
        found += page
        offset += limit


# --- tokens -----------------------------------------------------------------------------------


def test_the_guides_token_request_returns_a_bearer_token(sim_server) -> None:
    sim = sim_server()
    answer = httpx.post(
        f"{sim.base_url}/auth/token",
        headers={"Authorization": GUIDE_BASIC, "Accept": "application/json"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32


def test_a_wrong_secret_gets_the_oauth_style_401(sim_server) -> None:
    sim = sim_server()
    answer = httpx.post(
        f"{sim.base_url}/auth/token", headers={"Authorization": basic("partner-rp|3281110", "x")}
    )
    assert answer.status_code == 401
    assert answer.json() == INVALID_CLIENT


def test_a_url_encoded_bar_in_the_client_id_is_refused(sim_server) -> None:
    sim = sim_server()
    encoded = basic("partner-rp%7C3281110", "super-secret")
    answer = httpx.post(f"{sim.base_url}/auth/token", headers={"Authorization": encoded})
    assert answer.status_code == 401 and answer.json() == INVALID_CLIENT


def test_a_token_request_without_basic_auth_is_refused(sim_server) -> None:
    sim = sim_server()
    assert httpx.post(f"{sim.base_url}/auth/token").status_code == 401
    garbled = httpx.post(f"{sim.base_url}/auth/token", headers={"Authorization": "Basic %%%"})
    assert garbled.status_code == 401


def test_only_the_configured_clients_are_accepted(sim_server) -> None:
    sim = sim_server(clients={"other-rp|1234567": "pa:ss"})
    token_for(sim, basic("other-rp|1234567", "pa:ss"))
    answer = httpx.post(f"{sim.base_url}/auth/token", headers={"Authorization": GUIDE_BASIC})
    assert answer.status_code == 401


def test_data_endpoints_need_a_valid_bearer_token(sim_server) -> None:
    sim = sim_server()
    missing = httpx.get(f"{sim.base_url}/users")
    wrong = httpx.get(f"{sim.base_url}/users", headers={"Authorization": "Bearer nope"})
    not_bearer = httpx.get(f"{sim.base_url}/users", headers={"Authorization": GUIDE_BASIC})
    for answer in (missing, wrong, not_bearer):
        assert answer.status_code == 401
        assert answer.json()["imsx_codeMajor"] == "failure"
        assert minor_code(answer.json()) == "unauthorisedrequest"


def test_a_short_token_lifetime_expires_the_token_and_a_new_one_works(sim_server) -> None:
    sim = sim_server(quirks=Quirks(token_lifetime_s=1))
    answer = httpx.post(f"{sim.base_url}/auth/token", headers={"Authorization": GUIDE_BASIC})
    assert answer.json()["expires_in"] == 1
    old = answer.json()["access_token"]
    time.sleep(1.1)
    expired = httpx.get(f"{sim.base_url}/orgs", headers={"Authorization": f"Bearer {old}"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["imsx_description"]
    renewed = httpx.get(
        f"{sim.base_url}/orgs", headers={"Authorization": f"Bearer {token_for(sim)}"}
    )
    assert renewed.status_code == 200


def test_version_needs_a_token_and_auth_version_does_not(sim_server) -> None:
    sim = sim_server()
    assert httpx.get(f"{sim.base_url}/version").status_code == 401
    api = Api(sim)
    assert api.get("/version").json()["version"] == "1.1"
    auth_version = httpx.get(f"{sim.base_url}/auth/version")
    assert auth_version.status_code == 200 and "version" in auth_version.json()


# --- the guide's examples ---------------------------------------------------------------------


def test_every_collection_answers_in_its_envelope_with_everything_when_no_limit(
    sim_server,
) -> None:
    sim = sim_server()
    api = Api(sim)
    truth = generate(seed=1, pupils=100, term=0)
    for collection, records in truth.items():
        answer = api.get(f"/{collection}")
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json() == {collection: records}
        assert answer.headers["x-total-count"] == str(len(records))


@pytest.mark.parametrize(
    "example, expected",
    [
        ("status='active'", lambda u: u["status"] == "active"),
        ("status='tobedeleted'", lambda u: u["status"] == "tobedeleted"),
        ("sourcedId='x42Y7TNMV'", lambda u: u["sourcedId"] == "x42Y7TNMV"),
        (
            "dateLastModified>'2026-01-01T00:00:00Z'",
            lambda u: u["dateLastModified"] > "2026-01-01T00:00:00Z",
        ),
    ],
)
def test_the_guides_filter_examples_select_exactly_the_matching_users(
    sim_server, example, expected
) -> None:
    sim = sim_server()
    found = Api(sim).records(f"/users?filter={example}")
    wanted = [user for user in sim.records("users") if expected(user)]
    assert found == wanted and found


def test_the_guides_sorted_and_filtered_enrollments_example(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    answer = api.get(
        "/enrollments?filter=class.sourcedId='x11BSAT6S' and role='student'"
        "&sort=dateLastModified&orderBy=desc&limit=100&offset=0"
    )
    found = answer.json()["enrollments"]
    wanted = [
        e
        for e in sim.records("enrollments")
        if e["class"]["sourcedId"] == GUIDE_CLASS_ID and e["role"] == "student"
    ]
    assert sorted(ids(found)) == sorted(ids(wanted)) and GUIDE_PUPIL_ID in {
        e["user"]["sourcedId"] for e in found
    }
    stamps = [e["dateLastModified"] for e in found]
    assert stamps == sorted(stamps, reverse=True)
    assert answer.headers["x-total-count"] == str(len(wanted))


def test_the_guides_paging_example_reads_every_user_once(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    first = api.get("/users?limit=100&offset=0")
    second = api.get("/users?limit=100&offset=100")
    assert len(first.json()["users"]) == 100
    assert 'rel="next"' in first.headers["link"] and "offset=100" in first.headers["link"]
    assert ids(first.json()["users"]) + ids(second.json()["users"]) == ids(sim.records("users"))
    assert int(first.headers["x-total-count"]) == len(sim.records("users"))
    assert api.records("/users?limit=100&offset=100000") == []


@pytest.mark.parametrize(
    "expression, holds",
    [
        ("role!='student'", lambda u: u["role"] != "student"),
        ("familyName>='N'", lambda u: u["familyName"] >= "N"),
        ("familyName<'C'", lambda u: u["familyName"] < "C"),
        ("familyName<='Brown'", lambda u: u["familyName"] <= "Brown"),
        ("familyName~'BRIEN'", lambda u: "brien" in u["familyName"].lower()),
        ("familyName='O'Brien'", lambda u: u["familyName"] == "O'Brien"),
        ("grades='9'", lambda u: u.get("grades") == ["9"]),
        ("role='aide' OR role='administrator'", lambda u: u["role"] in ("aide", "administrator")),
        ("role='teacher' or role='aide'", lambda u: u["role"] in ("teacher", "aide")),
        (
            "role='student' AND grades='7'",
            lambda u: u["role"] == "student" and u["grades"] == ["7"],
        ),
        ("enabledUser='false'", lambda u: u["enabledUser"] is False),
        ("userIds.type='UPN'", lambda u: "UPN" in [i["type"] for i in u["userIds"]]),
    ],
)
def test_filters_support_every_operator_and_logical_joins(sim_server, expression, holds) -> None:
    sim = sim_server()
    found = Api(sim).records(f"/users?filter={expression}")
    assert found == [user for user in sim.records("users") if holds(user)]


def test_a_filter_value_with_spaces_encoded_as_plus_or_percent20_reads_the_same(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    plus = api.records("/classes?filter=classType%3D%27homeroom%27+and+grades%3D%278%27")
    percent = api.records("/classes?filter=classType%3D%27homeroom%27%20and%20grades%3D%278%27")
    assert plus == percent and plus and all(c["classType"] == "homeroom" for c in plus)


@pytest.mark.parametrize(
    "query",
    [
        "filter=nosuchfield='x'",
        "filter=status=active",
        "filter=status='active' and role='student' or role='teacher'",
        "filter=status",
        "filter=class='x11BSAT6S'",
    ],
)
def test_a_malformed_filter_is_a_400_with_an_ims_status(sim_server, query) -> None:
    sim = sim_server()
    answer = Api(sim).get(f"/users?{query}")
    assert answer.status_code == 400
    body = answer.json()
    assert (body["imsx_codeMajor"], body["imsx_severity"]) == ("failure", "error")
    assert minor_code(body) == "invalid_filter_field"


@pytest.mark.parametrize(
    "query", ["limit=-1", "limit=0", "limit=ten", "offset=-5", "offset=1.5", "orderBy=up"]
)
def test_a_bad_paging_or_ordering_option_is_a_400(sim_server, query) -> None:
    sim = sim_server()
    answer = Api(sim).get(f"/users?{query}")
    assert answer.status_code == 400 and answer.json()["imsx_codeMajor"] == "failure"


def test_sorting_works_both_ways(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    ascending = api.records("/users?sort=familyName&orderBy=asc")
    descending = api.records("/users?sort=familyName&orderBy=desc")
    names = [user["familyName"] for user in ascending]
    assert names == sorted(names) and len(set(names)) > 10
    assert [u["familyName"] for u in descending] == sorted(names, reverse=True)
    assert api.records("/users?sort=familyName") == ascending


def test_an_unknown_sort_field_answers_200_in_default_order_with_a_warning(sim_server) -> None:
    sim = sim_server()
    answer = Api(sim).get("/users?sort=shoeSize")
    assert answer.status_code == 200
    body = answer.json()
    assert ids(body["users"]) == ids(sim.records("users"))
    (warning,) = body["statusInfoSet"]
    assert warning["imsx_severity"] == "warning" and minor_code(warning) == "invalid_sort_field"


def test_one_record_can_be_read_by_sourced_id(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    assert api.get(f"/users/{GUIDE_PUPIL_ID}").json()["user"]["sourcedId"] == GUIDE_PUPIL_ID
    missing = api.get("/users/xNOTTHERE")
    assert missing.status_code == 404 and minor_code(missing.json()) == "unknownobject"


def test_an_unknown_path_is_a_404_with_an_ims_status(sim_server) -> None:
    sim = sim_server()
    answer = Api(sim).get("/teachers")
    assert answer.status_code == 404 and minor_code(answer.json()) == "unknownobject"


def test_names_arrive_as_utf8_json(sim_server) -> None:
    sim = sim_server()
    answer = Api(sim).get("/users?filter=familyName='Ó Súilleabháin'")
    assert "Ó Súilleabháin".encode() in answer.content
    assert answer.json()["users"][0]["familyName"] == "Ó Súilleabháin"


# --- status codes of the guide's table ---------------------------------------------------------


def test_a_forbidden_endpoint_answers_403_and_the_others_200(sim_server) -> None:
    sim = sim_server(quirks=Quirks(forbidden=frozenset({"enrollments"})))
    api = Api(sim)
    answer = api.get("/enrollments?limit=10")
    assert answer.status_code == 403 and minor_code(answer.json()) == "forbidden"
    assert api.get("/users?limit=10").status_code == 200


def test_a_server_error_answers_500_with_an_ims_status(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "500", offset=0),)))
    api = Api(sim)
    answer = api.get("/users?limit=10&offset=0")
    assert answer.status_code == 500 and answer.json()["imsx_codeMajor"] == "failure"
    assert api.get("/users?limit=10&offset=0").status_code == 200


# --- quirks -----------------------------------------------------------------------------------


def test_added_latency_delays_every_answer(sim_server) -> None:
    sim = sim_server(quirks=Quirks(latency_s=1.0))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{sim.base_url}/auth/version", timeout=0.2)
    sim.quirks.latency_s = 0.0
    assert httpx.get(f"{sim.base_url}/auth/version", timeout=5).status_code == 200


def test_an_error_rate_answers_some_requests_500_or_503_with_retry_after(sim_server) -> None:
    sim = sim_server(quirks=Quirks(error_rate=0.5, seed=4, retry_after_s=2))
    api = Api(sim)
    answers = [api.get("/orgs") for _ in range(40)]
    statuses = {answer.status_code for answer in answers}
    assert statuses == {200, 500, 503}
    assert all(a.headers["retry-after"] == "2" for a in answers if a.status_code == 503)


def test_every_nth_request_is_rate_limited_with_retry_after(sim_server) -> None:
    sim = sim_server(quirks=Quirks(rate_limit_every=3, retry_after_s=0.5))
    api = Api(sim)
    statuses = [api.get("/orgs").status_code for _ in range(6)]
    assert statuses == [200, 200, 429, 200, 200, 429]
    limited = api.get("/orgs"), api.get("/orgs"), api.get("/orgs")
    assert limited[2].headers["retry-after"] == "0.5"
    assert minor_code(limited[2].json()) == "server_busy"


def test_a_maximum_page_size_silently_caps_limit(sim_server) -> None:
    sim = sim_server(quirks=Quirks(max_page_size=25))
    api = Api(sim)
    capped = api.get("/users?limit=100&offset=0")
    assert len(capped.json()["users"]) == 25
    assert capped.headers["x-total-count"] == str(len(sim.records("users")))
    assert len(api.records("/users")) == 25
    # A pager trusting "short page = last page" would stop here and lose the rest.
    assert len(read_all_pages(api, "users", limit=100)) < len(sim.records("users"))


def test_no_total_count_omits_the_header_and_the_link(sim_server) -> None:
    sim = sim_server(quirks=Quirks(no_total_count=True))
    answer = Api(sim).get("/users?limit=10&offset=0")
    assert "x-total-count" not in answer.headers and "link" not in answer.headers
    assert len(answer.json()["users"]) == 10


def test_an_empty_page_can_be_204_with_no_body(sim_server) -> None:
    sim = sim_server(quirks=Quirks(empty_page_204=True))
    api = Api(sim)
    empty = api.get("/users?limit=10&offset=100000")
    assert empty.status_code == 204 and empty.content == b""
    assert api.get("/users?limit=10&offset=0").status_code == 200


def test_an_ignored_sort_answers_in_default_order(sim_server) -> None:
    sim = sim_server(quirks=Quirks(ignore_sort=True))
    api = Api(sim)
    assert ids(api.records("/users?sort=familyName&orderBy=desc")) == ids(sim.records("users"))


def test_a_server_can_refuse_sort_and_order_by_with_a_400(sim_server) -> None:
    sim = sim_server(quirks=Quirks(reject_sort=True))
    api = Api(sim)
    for query in ("sort=sourcedId", "orderBy=asc"):
        refused = api.get(f"/users?limit=10&offset=0&{query}")
        assert refused.status_code == 400 and minor_code(refused.json())
    assert ids(api.records("/users?limit=10&offset=0")) == ids(sim.records("users")[:10])


def test_a_server_can_ignore_offset_and_answer_from_the_start(sim_server) -> None:
    sim = sim_server(quirks=Quirks(ignore_offset=True))
    api = Api(sim)
    first = ids(sim.records("users")[:10])
    assert ids(api.records("/users?limit=10&offset=0")) == first
    assert ids(api.records("/users?limit=10&offset=10")) == first
    assert len(api.records("/users")) == len(sim.records("users"))


def test_booleans_can_arrive_as_strings(sim_server) -> None:
    sim = sim_server(quirks=Quirks(booleans_as_strings=True))
    api = Api(sim)
    assert {u["enabledUser"] for u in api.records("/users")} == {"true", "false"}
    teachers = api.records("/enrollments?filter=role='teacher'")
    assert {e["primary"] for e in teachers} <= {"true", "false"} and teachers


def test_tobedeleted_can_arrive_as_inactive(sim_server) -> None:
    sim = sim_server(quirks=Quirks(inactive_status=True))
    statuses = {u["status"] for u in Api(sim).records("/users")}
    assert statuses == {"active", "inactive"}


def test_shuffled_order_changes_between_requests_but_not_the_records(sim_server) -> None:
    sim = sim_server(quirks=Quirks(shuffle_order=True))
    api = Api(sim)
    first, second = ids(api.records("/users")), ids(api.records("/users"))
    assert first != second and sorted(first) == sorted(second)
    sorted_twice = (
        ids(api.records("/users?sort=sourcedId")),
        ids(api.records("/users?sort=sourcedId")),
    )
    assert sorted_twice[0] == sorted_twice[1]


def test_records_inserted_between_pages_make_a_naive_pager_repeat_records(sim_server) -> None:
    sim = sim_server(quirks=Quirks(drift_endpoint="users", drift_insert_per_page=2))
    before = len(sim.records("users"))
    seen = ids(read_all_pages(Api(sim), "users", limit=20))
    assert len(seen) > len(set(seen))  # repeats
    now = sim.records("users")
    assert len(now) > before and len({u["sourcedId"] for u in now}) == len(now)


def test_records_removed_between_pages_make_a_naive_pager_skip_records(sim_server) -> None:
    sim = sim_server(quirks=Quirks(drift_endpoint="users", drift_remove_per_page=2))
    seen = set(ids(read_all_pages(Api(sim), "users", limit=20)))
    still_there = set(ids(sim.records("users")))
    assert still_there - seen  # skipped: present on the server, never seen by the pager


def test_drift_can_add_records_at_the_end_instead(sim_server) -> None:
    quirks = Quirks(drift_endpoint="users", drift_insert_per_page=2, drift_at_end=True)
    sim = sim_server(quirks=quirks)
    before = ids(sim.records("users"))
    Api(sim).records("/users?limit=10&offset=0")
    after = ids(sim.records("users"))
    assert after[: len(before)] == before and len(after) == len(before) + 2


def test_drift_stops_after_the_configured_number_of_pages(sim_server) -> None:
    quirks = Quirks(drift_endpoint="users", drift_insert_per_page=1, drift_pages=2)
    sim = sim_server(quirks=quirks)
    before = len(sim.records("users"))
    read_all_pages(Api(sim), "users", limit=30)
    assert len(sim.records("users")) == before + 2


@pytest.mark.parametrize("kind, status", [("503", 503), ("429", 429), ("400", 400)])
def test_a_page_fault_answers_its_status_at_the_chosen_offset_only(
    sim_server, kind, status
) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", kind, offset=20, times=2),)))
    api = Api(sim)
    assert api.get("/users?limit=20&offset=0").status_code == 200
    failing = [api.get("/users?limit=20&offset=20") for _ in range(3)]
    assert [a.status_code for a in failing] == [status, status, 200]
    if status in (429, 503):
        assert failing[0].headers["retry-after"] == "1"
    assert ("GET", "/api/ims/oneroster/v1p1/school/users?limit=20&offset=20", status) in (
        sim.request_log
    )


def test_a_malformed_json_fault_answers_200_with_unparseable_json(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "json"),)))
    api = Api(sim)
    broken = api.get("/users?limit=10&offset=0")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert api.get("/users?limit=10&offset=0").json()["users"]


def test_an_html_fault_answers_an_html_error_page(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("classes", "html", offset=0),)))
    answer = Api(sim).get("/classes?limit=10&offset=0")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert answer.text.startswith("<!DOCTYPE html>")


def test_a_dropped_connection_fault_closes_without_an_answer(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "drop"),)))
    api = Api(sim)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/users?limit=10&offset=0")
    assert api.get("/users?limit=10&offset=0").status_code == 200


def test_a_stall_fault_holds_the_answer_back(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "stall", stall_s=1.0),)))
    api = Api(sim)
    with pytest.raises(httpx.ReadTimeout):
        api.get("/users?limit=10", timeout=0.2)
    assert api.get("/users?limit=10").status_code == 200


def test_a_record_without_sourced_id_fault(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "no_sourcedid", offset=0),)))
    page = Api(sim).records("/users?limit=10&offset=0")
    assert len(page) == 10 and "sourcedId" not in page[0]
    assert all("sourcedId" in user for user in page[1:])


def test_two_different_records_with_one_sourced_id_fault(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("classes", "dup_conflict", offset=0),)))
    page = Api(sim).records("/classes?limit=10&offset=0")
    first, copy = page[0], page[-1]
    assert first["sourcedId"] == copy["sourcedId"] and first != copy


def test_a_wrong_envelope_fault_uses_the_singular_key(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "wrong_envelope"),)))
    body = Api(sim).get("/users?limit=5").json()
    assert list(body) == ["user"]


def test_a_failed_200_fault_answers_no_records_and_a_failure_status(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "failed_200", offset=10),)))
    body = Api(sim).get("/users?limit=10&offset=10").json()
    assert body["users"] == []
    assert body["statusInfoSet"][0]["imsx_codeMajor"] == "failure"


def test_a_warning_fault_answers_the_page_with_a_warning_beside_it(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("users", "warning"),)))
    body = Api(sim).get("/users?limit=10&offset=0").json()
    assert len(body["users"]) == 10
    assert body["statusInfoSet"][0]["imsx_severity"] == "warning"


def test_faults_on_the_version_endpoints(sim_server) -> None:
    faults = (PageFault("version", "500"), PageFault("auth/version", "401"))
    sim = sim_server(quirks=Quirks(faults=faults))
    api = Api(sim)
    assert api.get("/version").status_code == 500
    assert httpx.get(f"{sim.base_url}/auth/version").status_code == 401
    assert api.get("/version").status_code == 200
    assert httpx.get(f"{sim.base_url}/auth/version").status_code == 200


def test_a_fault_on_the_token_endpoint(sim_server) -> None:
    sim = sim_server(quirks=Quirks(faults=(PageFault("token", "503"),)))
    first = httpx.post(f"{sim.base_url}/auth/token", headers={"Authorization": GUIDE_BASIC})
    assert first.status_code == 503 and "retry-after" in first.headers
    token_for(sim)


def test_quirks_can_be_replaced_or_changed_while_the_server_runs(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    sim.quirks = Quirks(max_page_size=7)
    assert len(api.records("/users?limit=50")) == 7
    sim.quirks.max_page_size = 3
    assert len(api.records("/users?limit=50")) == 3


# --- control endpoint and the CLI ---------------------------------------------------------------


def test_the_control_endpoint_switches_the_served_term(sim_server) -> None:
    sim = sim_server(pupils=80)
    api = Api(sim)
    assert api.records("/users") == generate(seed=1, pupils=80, term=0)["users"]
    switched = httpx.post(f"{sim.root_url}/_sim/term", json={"term": 1})
    assert switched.status_code == 200 and switched.json()["term"] == 1
    assert api.records("/users") == generate(seed=1, pupils=80, term=1)["users"]
    assert httpx.get(f"{sim.root_url}/_sim/state").json()["term"] == 1
    assert httpx.post(f"{sim.root_url}/_sim/term", json={"term": -1}).status_code == 400


def test_set_term_switches_the_term_in_process(sim_server) -> None:
    sim = sim_server(pupils=80, term=1)
    sim.set_term(2)
    assert Api(sim).records("/classes") == generate(seed=1, pupils=80, term=2)["classes"]


def test_the_control_endpoint_changes_quirks(sim_server) -> None:
    sim = sim_server()
    api = Api(sim)
    faults = [{"endpoint": "orgs", "kind": "500"}]
    answer = httpx.post(f"{sim.root_url}/_sim/quirks", json={"max_page_size": 4, "faults": faults})
    assert answer.status_code == 200 and answer.json()["quirks"]["max_page_size"] == 4
    assert len(api.records("/users")) == 4
    assert api.get("/orgs").status_code == 500
    bad = httpx.post(f"{sim.root_url}/_sim/quirks", json={"no_such_quirk": True})
    assert bad.status_code == 400


def test_sim_serve_prints_its_url_and_credentials_and_answers_the_guides_requests() -> None:
    command = [sys.executable, "-c", "from snapshotter.cli import cli; cli()", "sim", "serve"]
    command += ["--port", "0", "--pupils", "60", "--client", "demo-rp|1000001:s3cret"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        printed = []
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(printed)
        base_url = next(line.split()[-1] for line in printed if line.startswith("Base URL:"))
        assert base_url.startswith("http://127.0.0.1:") and "demo-rp|1000001:s3cret" in output
        assert "partner-rp" not in output
        token = httpx.post(
            f"{base_url}/auth/token", headers={"Authorization": basic("demo-rp|1000001", "s3cret")}
        ).json()["access_token"]
        answer = httpx.get(
            f"{base_url}/users?filter=sourcedId='x42Y7TNMV'",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        assert ids(answer.json()["users"]) == [GUIDE_PUPIL_ID]
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=10) == 0


def test_sim_generate_writes_each_collection_as_an_api_envelope(tmp_path) -> None:
    result = CliRunner().invoke(
        cli,
        ["sim", "generate", "--pupils", "60", "--term", "1", "--out", str(tmp_path), "--changes"],
    )
    assert result.exit_code == 0, result.output
    school = generate(seed=1, pupils=60, term=1)
    for collection, records in school.items():
        written = json.loads((tmp_path / f"{collection}.json").read_text(encoding="utf-8"))
        assert written == {collection: records}
    assert json.loads((tmp_path / "changes.json").read_text())
