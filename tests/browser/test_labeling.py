"""The labeling page in a real Chromium (Playwright), against the live server and the real REST API."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from annotation.models import Annotation, Item, Membership
from tests.browser.conftest import project_with_items
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_label(page: Page, live_server, project) -> Page:
    page.goto(f"{live_server.url}/projects/{project.pk}/label")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    return page


def current_item(page: Page) -> int:
    return int(page.locator("body").get_attribute("data-item-id"))


def wait_saved(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-outbox", "0")


def test_classification_keyboard_loop(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items(["first text", "second text", "third text"], annotators=[user])
    open_label(logged_in(user), live_server, project)
    expect(page.locator("#text")).to_have_text("first text")
    page.keyboard.press("2")  # politics
    expect(page.locator('.label-btn[data-label="politics"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("second text")
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("third text")
    page.keyboard.press("Enter")  # nothing chosen: not submitted
    expect(page.locator("#status")).to_contain_text("Choose a label first")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    wait_saved(page)
    got = {a.item_id: a for a in Annotation.objects.filter(annotator=user)}
    assert {k: v.value for k, v in got.items()} == {
        items[0].pk: {"label": "politics"},
        items[1].pk: {"label": "tech"},
        items[2].pk: {"label": "sports"},
    }
    assert all(a.lead_time_ms is not None and a.lead_time_ms >= 0 for a in got.values())
    assert all(a.accepted_suggestion is None for a in got.values())  # there was no suggestion
    assert errors == []


def test_multilabel_toggles(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items(["a text"], annotators=[user], task_type="multilabel")
    open_label(logged_in(user), live_server, project)
    for key in ["1", "3", "1", "2"]:
        page.keyboard.press(key)
    expect(page.locator('.label-btn[aria-pressed="true"]')).to_have_count(2)
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    wait_saved(page)
    assert Annotation.objects.get(item=items[0], annotator=user).value == {"labels": ["politics", "tech"]}
    assert errors == []


SPAN_TEXT = "Hi 😀 Ada\r\nlives in Zoe\u0308's café, Paris 🇫🇷 now."


def select_substring(page: Page, needle: str) -> None:
    """Select `needle` in the item text the way a mouse drag does: a DOM selection over the text nodes."""
    page.evaluate(
        """(needle) => {
          const el = document.getElementById('text');
          const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
          const nodes = []; let full = ''; let n;
          while ((n = walker.nextNode())) { nodes.push([n, full.length]); full += n.data; }
          const at = full.indexOf(needle);
          const point = (u) => { for (const [node, off] of nodes) { if (u <= off + node.data.length) return [node, u - off]; } };
          const r = document.createRange();
          r.setStart(...point(at)); r.setEnd(...point(at + needle.length));
          const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(r);
        }""",
        needle,
    )


def test_spans_keyboard_and_mouse_offsets_are_python_characters(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items([SPAN_TEXT], annotators=[user], task_type="spans", labels=["PER", "LOC", "ORG"])
    open_label(logged_in(user), live_server, project)
    # the text is exactly the JSON string: CRLF kept (the HTML parser would have made it LF)
    assert page.evaluate("document.getElementById('text').textContent") == SPAN_TEXT
    # keyboard: → → → reaches "Ada" (tokens: Hi, 😀, Ada), 1 labels it PER
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("1")
    # keyboard extension: → moves to "lives", Shift+→ once takes "in" too → ORG (3)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("3")
    # mouse: "Zoë's café" LOC, nested "café" ORG, and "Paris 🇫🇷" LOC
    select_substring(page, "Zoe\u0308's café")
    page.keyboard.press("2")
    select_substring(page, "café")
    page.keyboard.press("3")
    select_substring(page, " Paris 🇫🇷 ")  # surrounding spaces are trimmed
    page.keyboard.press("2")
    expect(page.locator(".span-chip")).to_have_count(5)
    # nested spans are drawn distinctly: "café" lies inside two spans, so its segment has two underlines
    cafe = page.locator(".seg.span", has_text="café").last
    assert cafe.get_attribute("data-spans").count(",") == 1
    assert cafe.evaluate("e => getComputedStyle(e).boxShadow").count("inset") == 2
    # remove "lives in" (ORG) with Backspace on its focused chip
    page.locator(".span-chip", has_text="lives in").focus()
    page.keyboard.press("Backspace")
    expect(page.locator(".span-chip")).to_have_count(4)
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    wait_saved(page)

    def at(sub: str) -> tuple[int, int]:
        i = SPAN_TEXT.index(sub)
        return i, i + len(sub)

    expected = [
        {"start": s, "end": e, "label": lab}
        for (s, e), lab in [
            (at("Ada"), "PER"),
            (at("Zoe\u0308's café"), "LOC"),
            (at("café"), "ORG"),
            (at("Paris 🇫🇷"), "LOC"),
        ]
    ]
    value = Annotation.objects.get(item=items[0], annotator=user).value
    assert sorted(value["spans"], key=lambda s: (s["start"], s["end"])) == sorted(
        expected, key=lambda s: (s["start"], s["end"])
    )
    # code points, not UTF-16 units: "Ada" starts at 5 (H, i, space, 😀, space), not 6
    assert expected[0]["start"] == 5
    assert errors == []


def suggestion(label: str, p: float, kind: str = "fine_tuned") -> dict:
    probs = {"sports": 0.05, "politics": 0.05, "tech": 0.05, label: p}
    return {
        "model_version": 3,
        "kind": kind,
        "value": {"label": label},
        "confidence": p,
        "probabilities": probs,
        "uncertainty": 1 - p,
        "scores": {"least_confidence": 1 - p, "margin": 0.5, "entropy": 0.6},
    }


def test_suggestion_preselected_only_when_a_trained_model_is_confident(page: Page, live_server, logged_in, errors):
    """Issue 13: a fine-tuned version's suggestion at or above preselect_min_confidence (0.8) is pre-selected and
    Enter accepts it; a less confident one, or any zero-shot one, is shown and nothing is chosen. Whether the
    answer accepted the suggestion is decided by the server from what it served."""
    user = make_user()
    project, items = project_with_items(
        ["Match report", "Budget vote", "Quiz night", "Plain"],
        annotators=[user],
        predictions={
            0: suggestion("tech", 0.87),
            1: suggestion("sports", 0.6),
            2: suggestion("sports", 0.95, kind="zero_shot"),
        },
    )
    open_label(logged_in(user), live_server, project)
    banner = page.locator("#suggestion")
    tech = page.locator('.label-btn[data-label="tech"]')
    expect(tech).to_have_attribute("aria-pressed", "true")
    expect(tech).to_have_class("label-btn suggested")
    expect(tech.locator(".suggested-badge")).to_have_text("suggested 87%")
    expect(banner).to_contain_text("tech (87% confident)")
    expect(banner).to_contain_text("model version 3, fine-tuned")
    expect(banner).to_contain_text("pre-selected; press Enter to accept")
    page.keyboard.press("Enter")  # accept in one key
    expect(page.locator("#text")).to_have_text("Budget vote")
    # 60 %: shown, not chosen; Enter does not accept it
    sports = page.locator('.label-btn[data-label="sports"]')
    expect(sports).to_have_class("label-btn suggested")
    expect(sports).to_have_attribute("aria-pressed", "false")
    expect(banner).to_contain_text("not pre-selected: the model is not confident enough")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text("Choose a label first")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("Quiz night")
    # zero-shot: never pre-selected, its probability called an uncalibrated score
    expect(sports).to_have_attribute("aria-pressed", "false")
    expect(sports.locator(".suggested-badge")).to_have_text("suggested")
    expect(banner).to_contain_text("sports (score 95%, uncalibrated)")
    expect(banner).to_contain_text("model version 3, zero-shot")
    expect(banner).to_contain_text("not pre-selected: a zero-shot model's guess")
    page.keyboard.press("1")  # chooses the suggested label itself
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("Plain")
    expect(banner).to_be_hidden()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    wait_saved(page)
    got = {a.item_id: a for a in Annotation.objects.filter(annotator=user)}
    assert (got[items[0].pk].value, got[items[0].pk].accepted_suggestion) == ({"label": "tech"}, True)
    assert (got[items[1].pk].value, got[items[1].pk].accepted_suggestion) == ({"label": "politics"}, False)
    assert (got[items[2].pk].value, got[items[2].pk].accepted_suggestion) == ({"label": "sports"}, True)
    assert got[items[2].pk].suggestion["kind"] == "zero_shot"
    assert got[items[3].pk].accepted_suggestion is None
    assert [e for e in errors if "404" not in e] == []  # stub suggestions have no reasons behind them


def test_a_paused_annotator_is_told_so_in_words(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, _ = project_with_items(["one", "two"], annotators=[user])
    Membership.objects.filter(project=project, user=user).update(paused=True)
    page = logged_in(user)
    page.goto(f"{live_server.url}/projects/{project.pk}/label")
    expect(page.locator("body")).to_have_attribute("data-state", "paused")
    expect(page.locator("#paused")).to_be_visible()
    expect(page.locator("#paused-title")).to_have_text("You are paused in this project")
    expect(page.locator("#paused-detail")).to_contain_text("A manager can un-pause you")
    expect(page.locator("#workspace")).to_be_hidden()
    expect(page.locator("#alert")).to_be_hidden()  # not a generic error
    Membership.objects.filter(project=project, user=user).update(paused=False)  # un-paused meanwhile
    page.locator("#paused-check-again").click()
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#paused")).to_be_hidden()
    expect(page.locator("#text")).to_have_text("one")
    assert [e for e in errors if "403" not in e] == []  # the browser logs the 403 itself


def test_reasons_highlighted_after_polling(page: Page, live_server, logged_in, errors):
    user = make_user()
    text = "Great 😀 goal by the striker"
    project, items = project_with_items([text], annotators=[user], predictions={0: suggestion("sports", 0.9)})
    calls: list[str] = []

    def tok(word: str, weight: float) -> dict:
        i = text.index(word)  # Python code points
        return {"text": word, "start": i, "end": i + len(word), "weight": weight}

    def explanation(route: Route) -> None:
        calls.append(route.request.url)
        if len(calls) < 3:
            route.fulfill(status=202, content_type="application/json", body=json.dumps({"detail": "computing"}))
        else:
            body = {
                "tokens": [tok("goal", 0.9), tok("striker", 0.45), tok("Great", -0.3)],
                "label": "sports",
                "model_version": 3,
            }
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/items/*/explanation", explanation)
    open_label(logged_in(user), live_server, project)
    expect(page.locator("#reasons-toggle")).to_be_visible()
    # shown without asking: polled while the worker computes them (202), then highlighted
    expect(page.locator(".seg.reason")).to_have_count(2)  # the negative weight is not highlighted
    assert len(calls) == 3
    assert calls[0].endswith(f"/api/items/{items[0].pk}/explanation")
    goal = page.locator(".seg.reason", has_text="goal")
    striker = page.locator(".seg.reason", has_text="striker")
    assert goal.evaluate("e => e.style.getPropertyValue('--w')") == "1.000"
    assert striker.evaluate("e => e.style.getPropertyValue('--w')") == "0.500"
    # the offsets after the emoji are right: the highlighted text is exactly the word
    assert goal.text_content() == "goal"
    assert page.evaluate("document.getElementById('text').textContent") == text
    page.keyboard.press("r")
    expect(page.locator(".seg.reason")).to_have_count(0)
    page.keyboard.press("r")  # back on, from what was already fetched
    expect(page.locator(".seg.reason")).to_have_count(2)
    assert len(calls) == 3
    assert errors == []


def test_reasons_404_says_so(page: Page, live_server, logged_in, errors):
    """The real endpoint: a suggestion without a stored prediction behind it has no reasons (404)."""
    user = make_user()
    project, _ = project_with_items(["x y"], annotators=[user], predictions={0: suggestion("sports", 0.9)})
    open_label(logged_in(user), live_server, project)
    expect(page.locator("#reasons-status")).to_contain_text("no reasons")
    assert [e for e in errors if "404" not in e] == []


def test_undo_reopens_last_item_for_edit(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items(["one", "two"], annotators=[user])
    open_label(logged_in(user), live_server, project)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("two")
    page.keyboard.press("3")  # work in progress on "two"
    page.keyboard.press("u")
    expect(page.locator("#text")).to_have_text("one")
    expect(page.locator("#edit-badge")).to_be_visible()
    expect(page.locator('.label-btn[data-label="sports"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("two")
    expect(page.locator('.label-btn[data-label="tech"]')).to_have_attribute("aria-pressed", "true")  # draft kept
    ann = Annotation.objects.get(item=items[0], annotator=user)
    assert ann.value == {"label": "politics"}
    assert Annotation.objects.filter(annotator=user).count() == 1
    assert errors == []


def test_skip_moves_on_and_records_the_skip(page: Page, live_server, logged_in, errors):
    from annotation.models.item import Skip

    user = make_user()
    project, items = project_with_items(["one", "two"], annotators=[user])
    open_label(logged_in(user), live_server, project)
    page.keyboard.press("s")
    expect(page.locator("#text")).to_have_text("two")
    wait_saved(page)
    assert Skip.objects.filter(item=items[0], user=user).exists()
    assert not Annotation.objects.filter(annotator=user).exists()
    assert errors == []


def test_draft_survives_reload(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items(["one", "two"], annotators=[user], task_type="multilabel")
    open_label(logged_in(user), live_server, project)
    page.keyboard.press("1")
    page.keyboard.press("3")
    # let the prefetch lease the second item too, so the reload must find its way back to the draft
    expect(page.locator("body")).to_have_attribute("data-prefetch", "ready")
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#text")).to_have_text("one")
    expect(page.locator('.label-btn[aria-pressed="true"]')).to_have_count(2)
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("two")
    wait_saved(page)
    assert Annotation.objects.get(item=items[0], annotator=user).value == {"labels": ["sports", "tech"]}
    assert errors == []


def test_offline_submit_is_retried_once_online_without_duplicates(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items(["one", "two", "three"], annotators=[user])
    open_label(logged_in(user), live_server, project)
    expect(page.locator("body")).to_have_attribute("data-prefetch", "ready")
    page.context.set_offline(True)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    # the prefetched item is shown at once, the answer waits in the outbox
    expect(page.locator("#text")).to_have_text("two")
    expect(page.locator("body")).to_have_attribute("data-outbox", "1")
    assert not Annotation.objects.filter(annotator=user).exists()
    page.context.set_offline(False)
    wait_saved(page)
    assert list(Annotation.objects.filter(annotator=user).values_list("item_id", "value")) == [
        (items[0].pk, {"label": "politics"})
    ]
    # the answer of a request whose response got lost is sent again with the same key: still one annotation
    keys: list[str] = []

    def lose_first_response(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the server stores it ...
            route.abort()  # ... but the browser never hears back
        else:
            route.continue_()

    page.route("**/api/items/*/annotations", lose_first_response)
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("three")
    wait_saved(page)
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert Annotation.objects.filter(annotator=user, item=items[1]).count() == 1
    assert Annotation.objects.filter(annotator=user).count() == 2
    assert [e for e in errors if "ERR_FAILED" not in e and "ERR_INTERNET_DISCONNECTED" not in e] == []


def test_untrusted_text_is_inert(page: Page, live_server, logged_in):
    user = make_user()
    evil = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    project, _ = project_with_items(
        [
            {
                "text": evil,
                "source": "<img src=y onerror=window.__xss=3>",
                "n": {"<b>": "</dl><script>window.__xss=4</script>"},
            }
        ],
        annotators=[user],
        labels=["<img src=z onerror=window.__xss=5>", "ok"],
        guidelines="<script>window.__xss=6</script><img src=q onerror=window.__xss=7>",
    )
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    logged_in(user)
    response = page.goto(f"{live_server.url}/projects/{project.pk}/label")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    expect(page.locator("#text")).to_have_text(evil)
    expect(page.locator("#meta")).to_contain_text("<img src=y onerror=window.__xss=3>")
    expect(page.locator(".label-btn").first).to_contain_text("<img src=z")
    assert (
        page.locator(
            "#text img, #text script, #meta img, #meta script, .label-btn img, .markdown img[onerror], .markdown script"
        ).count()
        == 0
    )
    page.wait_for_timeout(300)  # give any injected handler its chance to run
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []


def test_prefetch_renders_next_item_before_the_submit_returns(page: Page, live_server, logged_in, errors):
    user = make_user()
    n = 8
    project, _items = project_with_items([f"item text {i}" for i in range(n)], annotators=[user])
    open_label(logged_in(user), live_server, project)
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # answered only after the next item is on screen

    page.route("**/api/items/*/annotations", hold)
    expect(page.locator("body")).to_have_attribute("data-prefetch", "ready")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("item text 1")
    assert len(held) == 1, "the submit has been sent ..."
    assert not Annotation.objects.filter(annotator=user).exists(), "... and not answered, yet item 1 is rendered"
    held[0].continue_()
    page.unroute("**/api/items/*/annotations")
    wait_saved(page)
    # the loop, measured: submit (keypress) -> next item rendered, from performance.measure in label/page.js
    for _ in range(n - 2):
        before = current_item(page)
        # the expert reads for a moment: the prefetch of the next item has come back (or found none)
        page.wait_for_function("() => ['ready', 'none'].includes(document.body.dataset.prefetch)")
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        page.wait_for_function(
            f"() => document.body.dataset.itemId !== '{before}' || document.body.dataset.state === 'empty'"
        )
    wait_saved(page)
    ms = page.evaluate("performance.getEntriesByName('tandem:submit-to-render').map(e => e.duration)")
    print(
        f"\nsubmit -> next rendered (ms, n={len(ms)}): median {statistics.median(ms):.2f}, "
        f"max {max(ms):.2f}, all {[round(x, 2) for x in ms]}"
    )
    assert len(ms) >= n - 1
    assert Annotation.objects.filter(annotator=user).count() == n - 1
    assert Item.objects.filter(project=project, annotations__annotator=user).count() == n - 1
    assert errors == []


def test_server_without_exclude_falls_back_to_fetching_after_submit(page: Page, live_server, logged_in, errors):
    """An older server ignores ?exclude= (and hands back the held item): the page notices and still works."""
    from urllib.parse import urlsplit, urlunsplit

    user = make_user()
    n = 5
    project, _items = project_with_items([f"text {i}" for i in range(n)], annotators=[user])

    def strip_exclude(route: Route) -> None:
        parts = urlsplit(route.request.url)
        route.continue_(url=urlunsplit(parts._replace(query="")))

    page.route("**/api/projects/*/next*", strip_exclude)
    open_label(logged_in(user), live_server, project)
    expect(page.locator("body")).to_have_attribute("data-prefetch", "off")
    for i in range(n):
        expect(page.locator("#text")).to_have_text(f"text {i}")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_be_visible()
    wait_saved(page)
    ms = page.evaluate("performance.getEntriesByName('tandem:submit-to-render').map(e => e.duration)")
    print(
        f"\nwithout prefetch: submit -> next rendered (ms, n={len(ms)}): median {statistics.median(ms):.2f}, "
        f"max {max(ms):.2f}"
    )
    assert Annotation.objects.filter(annotator=user).count() == n
    assert errors == []


def test_slot_gone_409_is_shown_and_dropped(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, _items = project_with_items(["one", "two"], annotators=[user])
    page.route(
        "**/api/items/*/annotations",
        lambda route: route.fulfill(
            status=409,
            content_type="application/json",
            body=json.dumps(
                {"detail": "Every slot of this item was taken while your lease had expired.", "errors": []}
            ),
        ),
    )
    open_label(logged_in(user), live_server, project)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("two")
    expect(page.locator("#alert")).to_contain_text("Every slot of this item was taken")
    wait_saved(page)  # dropped from the outbox, not retried
    expect(page.locator("#undo")).to_be_disabled()  # nothing to undo: the answer was not stored
    assert [e for e in errors if "409" not in e] == []


def test_every_control_is_reachable_by_keyboard(page: Page, live_server, logged_in):
    user = make_user()
    project, _ = project_with_items(
        ["one"], annotators=[user], guidelines="Be **careful**.", predictions={0: suggestion("tech", 0.7)}
    )
    open_label(logged_in(user), live_server, project)
    reached: list[str] = []
    for _ in range(30):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "() => { const e = document.activeElement; "
                "const focusVisible = e.matches(':focus-visible') && getComputedStyle(e).outlineStyle !== 'none'; "
                "return (e.id || e.dataset.label || e.tagName) + (focusVisible ? '' : ' (no visible focus)'); }"
            )
        )
    for control in ["sports", "politics", "tech", "submit", "skip", "reasons-toggle", "help-open", "SUMMARY", "text"]:
        assert control in reached, (control, reached)
    assert not [r for r in reached if "no visible focus" in r and r != "BODY (no visible focus)"], reached


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is missing: run `npm ci`")
def test_pages_pass_axe_wcag_aa(browser, live_server):
    """axe-core (WCAG 2.x A and AA rules, contrast included) finds nothing on the project list and labeling pages."""
    from django.conf import settings
    from django.test import Client

    user = make_user()
    project, _ = project_with_items(
        ["Ada lives in Paris", "two"],
        annotators=[user],
        task_type="spans",
        labels=["PER", "LOC"],
        guidelines="# Rules\n\nMark **people** and places.",
        predictions={
            0: {"model_version": 1, "value": {"spans": [{"start": 0, "end": 3, "label": "PER", "score": 0.8}]}}
        },
    )
    cls, _ = project_with_items(["a text"], annotators=[user], predictions={0: suggestion("tech", 0.7)})
    client = Client()
    client.force_login(user)
    context = browser.new_context(bypass_csp=True)  # only to inject axe itself
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    found = {}
    for name, url, ready in [
        ("projects", "/", None),
        ("label spans", f"/projects/{project.pk}/label", "ready"),
        ("label classification", f"/projects/{cls.pk}/label", "ready"),
    ]:
        page.goto(live_server.url + url)
        if ready:
            expect(page.locator("body")).to_have_attribute("data-state", ready)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "async () => (await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}))"
            ".violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
        )
        if result:
            found[name] = result
    page.goto(f"{live_server.url}/projects/{cls.pk}/label")
    expect(page.locator("body")).to_have_attribute("data-state", "ready")
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}})).violations.map(v => v.id)"
    )
    if result:
        found["help overlay"] = result
    context.close()
    assert found == {}, json.dumps(found, indent=1)


def test_answer_kept_when_the_session_ended(page: Page, live_server, logged_in, errors):
    user = make_user()
    project, items = project_with_items(["one", "two"], annotators=[user])
    page.route(
        "**/api/items/*/annotations",
        lambda route: route.fulfill(
            status=401, content_type="application/json", body='{"detail": "Not authenticated.", "errors": []}'
        ),
        times=1,  # only the first submit meets an ended session
    )
    open_label(logged_in(user), live_server, project)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#alert")).to_contain_text("session has ended")
    expect(page.locator("body")).to_have_attribute("data-outbox", "1")
    wait_saved(page)
    # the 401 came from the stub (the server never saw that request), so the stored annotation is the retry's
    assert list(Annotation.objects.filter(annotator=user).values_list("item_id", "value")) == [
        (items[0].pk, {"label": "politics"})
    ]
    assert [e for e in errors if "401" not in e] == []


def test_letter_hotkeys_long_text_progress_and_guidelines(page: Page, live_server, logged_in, errors):
    user = make_user()
    labels = [f"label{i}" for i in range(11)]  # hotkeys 1-9, then letters
    long_text = "\n".join(f"Line {i}:\tsome  spaced   words" for i in range(400))
    project, items = project_with_items(
        [long_text, "short"], annotators=[user], labels=labels, guidelines="## How\n\nPick *one*."
    )
    hotkeys = {lab["name"]: lab["hotkey"] for lab in project.labels}
    open_label(logged_in(user), live_server, project)
    expect(page.locator("#progress-text")).to_have_text("0 done · 2 left")
    # long texts keep their whitespace exactly and scroll inside their box
    text = page.locator("#text")
    assert text.evaluate("e => e.textContent") == long_text
    assert text.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    assert text.evaluate("e => e.scrollHeight > e.clientHeight")
    # the guidelines panel opens and closes with G
    expect(page.locator("#guidelines h2")).to_have_text("How")
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).to_have_attribute("open", "")
    page.keyboard.press("g")
    expect(page.locator("#guidelines")).not_to_have_attribute("open", "")
    page.keyboard.press(hotkeys["label10"])
    expect(page.locator('.label-btn[data-label="label10"]')).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#text")).to_have_text("short")
    expect(page.locator("#progress-text")).to_have_text("1 done · 1 left")
    wait_saved(page)
    ann = Annotation.objects.get(item=items[0], annotator=user)
    assert ann.value == {"label": "label10"}
    assert hotkeys["label10"].isalpha()
    assert errors == []
