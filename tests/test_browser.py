"""What a person sees in a real browser: `snapshotter serve` started for real over the test
archive, Debian's Chromium driven by Playwright from the home page through the site's own links,
and a screenshot of each page for the README.

Each page is one entry of `VISITS`: how a person reaches it from the home page (clicks, never a
typed address) and what they must see there. Every visit also checks what no page may do: show
an error or a traceback, log a console error, open a dialog, or ask any host but the site.

Screenshots go to a temporary folder, so a test run leaves the checkout as it was. To refresh the
committed ones the README shows:

    SNAPSHOTTER_SCREENSHOTS=docs/images pytest tests/test_browser.py
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers_serve import HOSTILE_ESTAB, HOSTILE_NAME, Archive, build_archive, serving

from snapshotter.archive.people import headline

ROOT = Path(__file__).resolve().parent.parent
DOCS_IMAGES = ROOT / "docs" / "images"
SCREENSHOTS_ENV = "SNAPSHOTTER_SCREENSHOTS"
# Short, so a short page is not padded out to the window: a full-page shot takes it all anyway.
VIEWPORT = {"width": 1280, "height": 640}
SCREENSHOT_MAX_BYTES = 300_000
CHROMIUM = shutil.which("chromium")
NO_BROWSER = (
    "no `chromium` on PATH: the browser test drives Debian's Chromium "
    "(`apt-get install chromium`, as .ci/run does)"
)


@dataclass(frozen=True)
class Site:
    """`snapshotter serve` running over the test archive."""

    url: str  # http://127.0.0.1:PORT/
    archive: Archive

    def headline(self, run_id: int) -> dict[str, Any]:
        """The people counts of a run as the CLI reports them."""
        with closing(sqlite3.connect(self.archive.path / "changes.db")) as conn:
            return headline(conn, run_id)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if CHROMIUM is None:
        pytest.skip(NO_BROWSER)
    archive = build_archive(tmp_path_factory.mktemp("archive"))
    with serving(archive.path) as served:
        yield Site(served.url, archive)
        served.stop()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $SNAPSHOTTER_SCREENSHOTS (docs/images to refresh the README's),
    else a temporary folder."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    if not chosen:
        return tmp_path_factory.mktemp("screenshots")
    folder = Path(chosen).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- The pages, each reached from the home page as a person would ---------------------------


def _numbers(page: Any, row: Any, names: tuple[str, ...]) -> dict[str, int]:
    return {name: int(row.locator(f"td.{name}").inner_text().replace(",", "")) for name in names}


HEADLINE_TOTALS = ("joiners", "leavers", "purged")
HEADLINE_COUNTS = ("year_group_changes", "class_moves", "identity_changes")


def _expected(people: dict[str, Any]) -> dict[str, int]:
    expected = {name: people[name]["total"] for name in HEADLINE_TOTALS}
    expected.update({name: people[name] for name in HEADLINE_COUNTS})
    return expected


def stay_home(page: Any, site: Site) -> None:
    """The home page is where every visit starts."""


def home_shows_the_school_its_snapshots_and_each_runs_counts(page: Any, site: Site) -> None:
    school = page.locator("section.school", has_text="Quarrendon Academy")
    assert school.locator("h2").inner_text().startswith("Quarrendon Academy")
    assert school.locator("table.snapshots tbody tr").count() == len(site.archive.snapshots)
    for run_id in site.archive.run_ids:
        row = school.locator(f'tr.run[data-run-id="{run_id}"]')
        shown = _numbers(page, row, HEADLINE_TOTALS + HEADLINE_COUNTS)
        assert shown == _expected(site.headline(run_id)), f"run {run_id}"
    # A provider-given name that is markup reads as text (and no script ran: see `visit`).
    assert page.get_by_text(HOSTILE_NAME).count() == 1


def click_the_latest_run(page: Any, site: Site) -> None:
    run_id = site.archive.run_ids[-1]
    page.locator(f'tr.run[data-run-id="{run_id}"] a').first.click()
    page.wait_for_url(f"**/-/snapshotter/runs/{run_id}")


def run_shows_what_changed_with_the_clis_counts(page: Any, site: Site) -> None:
    run_id = site.archive.run_ids[-1]
    assert page.locator("h1").inner_text().startswith("Quarrendon Academy")
    assert "what changed" in page.locator("h1").inner_text()
    people = page.locator("table.people tbody tr")
    assert _numbers(page, people, HEADLINE_TOTALS + HEADLINE_COUNTS) == _expected(
        site.headline(run_id)
    )
    assert page.locator(".volume-warning").count() >= 1  # the rollover's
    assert page.locator("table.counts tbody tr").count() > 0


def click_the_latest_snapshot_then_its_users(page: Any, site: Site) -> None:
    latest = site.archive.snapshots[-1].stem
    page.locator(f'table.snapshots a[href="/{latest}"]').click()
    page.wait_for_url(f"**/{latest}")
    assert page.locator("h1").inner_text().startswith("Quarrendon Academy: snapshot of")
    page.get_by_role("link", name="users", exact=True).click()
    page.wait_for_url(f"**/{latest}/users")


def users_table_says_what_it_and_its_columns_hold(page: Any, site: Site) -> None:
    assert page.get_by_text("Pupils, staff and contacts: one row per person").count() == 1
    descriptions = page.locator("dl.column-descriptions")
    assert "Surname." in descriptions.inner_text()
    assert page.locator("table.rows-and-columns tbody tr").count() > 0


def _a_leaver(site: Site) -> tuple[str, str]:
    """(sourcedId, surname) of a pupil who left in the first saved run."""
    with closing(sqlite3.connect(site.archive.path / "changes.db")) as conn:
        (sourced_id,) = conn.execute(
            "SELECT sourcedId FROM leavers WHERE run_id = ? AND role = 'student' "
            "ORDER BY sourcedId LIMIT 1",
            (site.archive.run_ids[0],),
        ).fetchone()
    with closing(sqlite3.connect(site.archive.snapshots[0])) as conn:
        (surname,) = conn.execute(
            "SELECT familyName FROM users WHERE sourcedId = ?", (sourced_id,)
        ).fetchone()
    return sourced_id, surname


def search_the_school_for_a_leaver(page: Any, site: Site) -> None:
    _, surname = _a_leaver(site)
    school = page.locator("section.school", has_text="Quarrendon Academy")
    school.locator("form.history-search input[name=q]").fill(surname)
    school.locator("form.history-search input[type=submit]").click()
    page.wait_for_url("**/-/snapshotter/search/**")


def search_finds_the_leaver_and_says_they_left(page: Any, site: Site) -> None:
    sourced_id, _ = _a_leaver(site)
    hit = page.locator(f'tr.hit[data-sourced-id="{sourced_id}"]')
    assert hit.count() == 1
    assert "left" in hit.locator("td.where").inner_text()


def search_then_open_the_leavers_history(page: Any, site: Site) -> None:
    search_the_school_for_a_leaver(page, site)
    sourced_id, _ = _a_leaver(site)
    page.locator(f'tr.hit[data-sourced-id="{sourced_id}"] a').first.click()
    page.wait_for_url(f"**/-/snapshotter/history/**/users/{sourced_id}")


def history_shows_when_they_left_and_the_reports(page: Any, site: Site) -> None:
    _, surname = _a_leaver(site)
    assert surname in page.locator("h1").inner_text()
    kinds = page.locator("tr.event td.kind").all_inner_texts()
    assert (
        kinds[0].startswith("first seen") or "first" in page.locator("li.first-seen").inner_text()
    )
    assert any("tobedeleted" in kind or "disappeared" in kind for kind in kinds), kinds
    assert page.locator("tr.run").count() >= 1
    assert page.locator("tr.enrollment").count() >= 1


def compare_the_first_two_snapshots(page: Any, site: Site) -> None:
    school = page.locator("section.school", has_text="Quarrendon Academy")
    school.get_by_role("link", name="Compare any two snapshots").click()
    page.wait_for_url("**/-/snapshotter/compare/**")
    first, second = (path.stem for path in site.archive.snapshots[:2])
    page.select_option("#compare-old", first)
    page.select_option("#compare-new", second)
    page.locator("form.compare input[type=submit]").click()
    page.wait_for_url("**/-/snapshotter/compare/**old=**")


def compare_counts_the_saved_runs_people(page: Any, site: Site) -> None:
    people = page.locator("table.people tbody tr")
    assert _numbers(page, people, HEADLINE_TOTALS + HEADLINE_COUNTS) == _expected(
        site.headline(site.archive.run_ids[0])
    )


@dataclass(frozen=True)
class Visit:
    """One page of the site: its screenshot's name, how a person reaches it from the home page,
    and what they must see there."""

    name: str
    reach: Callable[[Any, Site], None]
    expect: Callable[[Any, Site], None]
    # CSS selectors left out of the screenshot only (the test still sees them).
    unshown: tuple[str, ...] = ()
    # False: only the window's worth (a table page of a hundred rows is long).
    full_page: bool = True


# Add a page here (history, search, compare): one entry, and its screenshot in the README.
VISITS = (
    Visit(
        "home",
        stay_home,
        home_shows_the_school_its_snapshots_and_each_runs_counts,
        # The school named in markup is there to be tested, not shown to the README's readers.
        unshown=(f"#school-{HOSTILE_ESTAB}",),
    ),
    # The first screen: the answer is there, and the whole list of changes is long.
    Visit(
        "run", click_the_latest_run, run_shows_what_changed_with_the_clis_counts, full_page=False
    ),
    Visit("search", search_the_school_for_a_leaver, search_finds_the_leaver_and_says_they_left),
    Visit(
        "history",
        search_then_open_the_leavers_history,
        history_shows_when_they_left_and_the_reports,
        full_page=False,
    ),
    Visit(
        "compare",
        compare_the_first_two_snapshots,
        compare_counts_the_saved_runs_people,
        full_page=False,
    ),  # fmt: skip
    Visit(
        "snapshot-users",
        click_the_latest_snapshot_then_its_users,
        users_table_says_what_it_and_its_columns_hold,
        full_page=False,
    ),
)


@pytest.mark.parametrize("visit", VISITS, ids=lambda visit: visit.name)
def test_a_person_reaches_the_page_and_sees_it_whole(
    visit: Visit, site: Site, browser: Any, screenshots: Path
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        requests: list[str] = []
        console_errors: list[str] = []
        dialogs: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on(
            "console",
            lambda message: console_errors.append(message.text) if message.type == "error" else 0,
        )
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

        assert page.goto(site.url).ok
        visit.reach(page, site)
        page.wait_for_load_state("networkidle")

        text = page.locator("body").inner_text()
        assert "Traceback" not in text and "Error" not in text, text[:2000]
        visit.expect(page, site)
        assert console_errors == []
        assert dialogs == []
        site_host = urlsplit(site.url).netloc
        elsewhere = [url for url in requests if urlsplit(url).netloc != site_host]
        assert elsewhere == [], "asked another host"
        assert len(requests) > 1  # the page and the site's own stylesheet at least

        shot = screenshots / f"{visit.name}.png"
        page.screenshot(
            path=shot,
            full_page=visit.full_page,
            animations="disabled",
            caret="hide",
            style="".join(f"{selector} {{ display: none }}" for selector in visit.unshown),
        )
        assert shot.stat().st_size < SCREENSHOT_MAX_BYTES, f"{shot.name} is too big for the README"
    finally:
        context.close()


def test_each_page_visited_has_its_screenshot_in_the_readme() -> None:
    """The committed screenshots are the visits' (refresh them as the module's docstring says)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for visit in VISITS:
        image = DOCS_IMAGES / f"{visit.name}.png"
        assert image.is_file(), f"{image.relative_to(ROOT)} is missing"
        assert image.stat().st_size < SCREENSHOT_MAX_BYTES
        assert f"docs/images/{visit.name}.png" in readme, f"the README does not show {image.name}"


def test_the_digests_html_part_reads_well_in_a_browser_and_asks_no_host(
    site: Site, browser: Any, screenshots: Path
) -> None:
    """The HTML part of the digest as a mail client shows it: the subject and the people counts
    on the first screen, no script error, and not one request (a mail client blocks remote
    content; a remote asset would tell its host who opened the message)."""
    from snapshotter.digest.content import read_digest
    from snapshotter.digest.message import render_html

    run_id = site.archive.run_ids[-1]
    digest = read_digest(
        site.archive.path / "changes.db",
        run_id=run_id,
        max_per_section=5,
        datasette_url="https://archive.school.example",
    )
    context = browser.new_context(viewport={"width": 900, "height": 640})
    try:
        page = context.new_page()
        requests: list[str] = []
        console_errors: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        page.on(
            "console",
            lambda message: console_errors.append(message.text) if message.type == "error" else 0,
        )
        page.set_content(render_html(digest))
        text = page.locator("body").inner_text()
        people = site.headline(run_id)
        assert page.locator("h1").inner_text() == digest.subject
        assert f"{people['joiners']['total']}\njoiners" in text
        assert f"{people['year_group_changes']}\nyear-group changes" in text
        # The rollover's warning comes first.
        assert "Expected at a new school year:" in text.split("People")[0]
        assert requests == [] and console_errors == []
        shot = screenshots / "digest.png"
        page.screenshot(path=shot, full_page=True, animations="disabled")
        assert shot.stat().st_size < SCREENSHOT_MAX_BYTES
    finally:
        context.close()
