"""The drawing page in a real browser: Chromium (Debian's, driven by Playwright) against ``digitnet serve``.

Draws digits with mouse strokes and with a finger (touch events), uploads a photo of a number, and saves
screenshots to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # gitignored
CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                                               "(`make browser` installs it)")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]

# Strokes in board coordinates (0..1), as a person would draw them.
ONE = [[(0.52, 0.16), (0.50, 0.50), (0.48, 0.84)]]
SEVEN = [[(0.24, 0.22), (0.76, 0.22), (0.60, 0.50), (0.44, 0.84)]]
ZERO = [[(0.5 + 0.2 * math.sin(t / 40 * 2 * math.pi), 0.5 - 0.32 * math.cos(t / 40 * 2 * math.pi))
         for t in range(42)]]
FOUR = [[(0.36, 0.16), (0.28, 0.56), (0.74, 0.56)], [(0.62, 0.30), (0.62, 0.86)]]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()


def open_page(browser, server, **context_args):
    context = browser.new_context(**context_args)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server + "/")
    page.wait_for_function("() => document.querySelector('#model-chip').textContent.includes('% on MNIST test')")
    return page, errors


def answers(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.answers || 0)"))


def wait_for_answer(page, before: int) -> str:
    """The digit shown once the page has answered for everything drawn (no request in flight)."""
    page.wait_for_function(f"() => Number(document.body.dataset.answers || 0) > {before} "
                           "&& document.body.dataset.state === 'idle'", timeout=20_000)
    return page.locator("#digit").inner_text()


def draw_with_mouse(page, strokes) -> str:
    box = page.locator("#board").bounding_box()
    before = answers(page)
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            for step in range(1, 7):  # intermediate points, as a real mouse reports them
                t = step / 6
                page.mouse.move(box["x"] + (x0 + t * (x1 - x0)) * box["width"],
                                box["y"] + (y0 + t * (y1 - y0)) * box["height"])
        page.mouse.up()
    return wait_for_answer(page, before)


def draw_with_finger(page, strokes) -> str:
    """Real touch input (Chrome DevTools protocol), so the page sees pointer events of type "touch"."""
    cdp = page.context.new_cdp_session(page)
    box = page.locator("#board").bounding_box()
    before = answers(page)

    def touch(kind, x, y):
        points = [] if kind == "touchEnd" else [{"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    for stroke in strokes:
        touch("touchStart", *stroke[0])
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            for step in range(1, 7):
                t = step / 6
                touch("touchMove", x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        touch("touchEnd", 0, 0)
    return wait_for_answer(page, before)


def clear(page) -> None:
    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"


def test_draw_digits_and_read_a_photo(browser, server, number_photo, tmp_path):
    page, errors = open_page(browser, server, viewport={"width": 1280, "height": 900})
    ARTIFACTS.mkdir(exist_ok=True)

    assert draw_with_mouse(page, ONE) == "1"
    clear(page)
    assert draw_with_mouse(page, ZERO) == "0"
    clear(page)
    assert draw_with_mouse(page, FOUR) == "4"
    clear(page)
    assert draw_with_mouse(page, SEVEN) == "7"
    # The answer panel: the probability bars and the 28×28 the model saw.
    assert page.locator("#bars li.best").get_attribute("data-digit") == "7"
    assert "it is a 7" in page.locator("#confidence").inner_text()
    assert page.evaluate("document.querySelector('#saw').naturalWidth") == 28

    photo, text = number_photo
    path = tmp_path / "number.jpg"
    path.write_bytes(photo)
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => document.body.dataset.photo === 'done'", timeout=20_000)
    assert page.locator("#read-text").inner_text() == text
    assert page.locator("#crops li img").count() == len(text)
    assert page.locator("#boxes span.item").count() == len(text)
    assert page.locator("#boxes span.item.sep").count() == 0
    assert page.locator("#boxes span.line").count() == 1
    assert page.locator("#boxes span.line").get_attribute("data-label") == text
    page.screenshot(path=str(ARTIFACTS / "serve-desktop.png"), full_page=True)

    # Undo takes the last stroke away; an empty board shows no answer.
    clear(page)
    draw_with_mouse(page, ONE)
    page.click("#undo")
    assert page.locator("#digit").inner_text() == "?"
    assert errors == []


def item(char: str, box: list[int], confidence: float = 0.97) -> dict:
    return {"char": char, "digit": int(char) if char.isdigit() else None, "confidence": confidence, "box": box}


# A receipt as /api/read answers it (boxes in the pixels of the 700×280 number_photo): "12.50" over "-3".
RECEIPT_LINES = [
    {"text": "12.50", "box": [70, 20, 520, 120], "digits": [
        item("1", [70, 22, 140, 118]), item("2", [160, 20, 250, 120]), item(".", [262, 104, 276, 118], 0.9),
        item("5", [290, 21, 390, 119]), item("0", [410, 20, 520, 120])]},
    {"text": "-3", "box": [80, 150, 260, 260], "digits": [
        item("-", [80, 198, 150, 212], 0.88), item("3", [170, 150, 260, 260])]},
]
RECEIPT = {"path": "receipt.jpg", "text": "12.50\n-3", "lines": RECEIPT_LINES,
           "digits": [d for line in RECEIPT_LINES for d in line["digits"]], "error": None, "note": None}


def test_photo_with_two_lines_and_separators(browser, server, number_photo, tmp_path):
    """The page draws each line's box with its text, each separator unlike a digit, and shows both lines."""
    page, errors = open_page(browser, server, viewport={"width": 1280, "height": 900})
    sent: list[str] = []

    def two_lines(route):  # the answer of a better reader than today's, whatever the photo holds
        sent.append(route.request.url)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(RECEIPT))

    page.route("**/api/read*", two_lines)
    path = tmp_path / "receipt.jpg"
    path.write_bytes(number_photo[0])
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => document.body.dataset.photo === 'done'", timeout=20_000)
    page.wait_for_function("() => document.querySelectorAll('#boxes span').length > 0", timeout=5_000)
    assert len(sent) == 1

    # Both lines' text, one under the other.
    assert page.locator("#read-text").inner_text() == "12.50\n-3"
    # Two line outlines, top to bottom, each labelled with its text and holding its items' boxes.
    lines = page.locator("#boxes span.line")
    assert lines.count() == 2
    assert [lines.nth(k).get_attribute("data-label") for k in range(2)] == ["12.50", "-3"]
    labels = page.evaluate("[...document.querySelectorAll('#boxes span.line')]"
                           ".map((el) => getComputedStyle(el, '::after').content)")
    assert labels == ['"12.50"', '"-3"']
    line_boxes = [lines.nth(k).bounding_box() for k in range(2)]
    assert line_boxes[0]["y"] + line_boxes[0]["height"] <= line_boxes[1]["y"] + 1
    items = page.locator("#boxes span.item")
    assert items.count() == 7
    assert [items.nth(k).get_attribute("data-label") for k in range(7)] == list("12.50-3")
    for k, line_box in [(0, line_boxes[0]), (4, line_boxes[0]), (5, line_boxes[1]), (6, line_boxes[1])]:
        b = items.nth(k).bounding_box()
        assert line_box["x"] <= b["x"] and b["x"] + b["width"] <= line_box["x"] + line_box["width"] + 0.5
        assert line_box["y"] <= b["y"] and b["y"] + b["height"] <= line_box["y"] + line_box["height"] + 0.5
    # Separators look different from digits: another outline colour.
    separators = page.locator("#boxes span.item.sep")
    assert [separators.nth(k).get_attribute("data-label") for k in range(2)] == [".", "-"]
    colour = "(el) => getComputedStyle(el).borderTopColor"
    assert separators.first.evaluate(colour) != items.first.evaluate(colour)
    assert lines.first.evaluate(colour) not in (separators.first.evaluate(colour), items.first.evaluate(colour))
    # The list of items: every char, the separators marked.
    assert page.locator("#crops li b").all_inner_texts() == list("12.50-3")
    assert page.locator("#crops li.sep").count() == 2
    assert "5 digits · 2 separators · 2 lines" in page.locator("#read-meta").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-two-lines.png"), full_page=True)
    assert errors == []


def test_a_note_beside_a_reading_is_shown_with_it(browser, server, number_photo, tmp_path):
    """A reading that comes with a note (only page 1 of a multi-page file was read) shows both: the note was shown
    only where nothing was read."""
    page, errors = open_page(browser, server)
    note = "only page 1 of 3 was read: save each page as a picture of its own to read it"
    page.route("**/api/read*", lambda route: route.fulfill(status=200, content_type="application/json",
                                                             body=json.dumps({**RECEIPT, "note": note})))
    path = tmp_path / "receipt.tif"
    path.write_bytes(number_photo[0])
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => document.body.dataset.photo === 'done'", timeout=20_000)
    meta = page.locator("#read-meta").inner_text()
    assert "5 digits · 2 separators · 2 lines" in meta and note in meta
    assert page.locator("#read-text").inner_text() == "12.50\n-3"
    assert errors == []


def test_phone_layout_and_finger_drawing(browser, server):
    page, errors = open_page(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)
    # Responsive: nothing wider than the screen, the board fills the width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    board = page.locator("#board").bounding_box()
    assert board["width"] >= 300 and abs(board["width"] - board["height"]) < 2

    assert draw_with_finger(page, SEVEN) == "7"
    # The answer panel is below the board on a phone: the badge on the board shows the answer meanwhile.
    assert page.locator("#badge").is_visible() and page.locator("#badge").inner_text().startswith("7")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-phone.png"), full_page=True)
    assert errors == []


LIVE_STATUS = ".live-responses-table tr.response td.response-col_status"  # the status Swagger UI got back


def test_swagger_ui_try_it_out_offline(browser, server, mnist):
    """/docs is Swagger UI served by the app itself: it renders and "Try it out" executes real requests,
    with every request to anywhere but this server refused (the machine has no network)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    elsewhere: list[str] = []

    def only_this_server(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server + "/docs")
    page.wait_for_selector(".opblock-summary")
    assert page.locator(".opblock").count() >= 4
    assert "/api/predict" in page.locator(".swagger-ui").inner_text()

    # GET /api/health: expand, Try it out, Execute, and the live answer is shown.
    health = page.locator("#operations-default-health_api_health_get")
    health.locator(".opblock-summary").click()
    health.locator("button.try-out__btn").click()
    health.locator("button.execute").click()
    status = health.locator(LIVE_STATUS).first
    status.wait_for(timeout=20_000)
    assert status.inner_text().strip() == "200"
    assert '"status": "ok"' in health.locator(".live-responses-table .highlight-code").first.inner_text()

    # POST /api/predict with a JSON body of pixels, typed into the request body editor.
    predict = page.locator("#operations-default-predict_api_predict_post")
    predict.locator(".opblock-summary").click()
    predict.locator("button.try-out__btn").click()
    predict.locator(".opblock-section-request-body select").select_option("application/json")
    body = json.dumps({"pixels": mnist.test_images[0].tolist()})
    predict.locator("textarea.body-param__text").fill(body)
    predict.locator("button.execute").click()
    status = predict.locator(LIVE_STATUS).first
    status.wait_for(timeout=20_000)
    assert status.inner_text().strip() == "200"
    answer = predict.locator(".live-responses-table .highlight-code").first.inner_text()
    assert f'"digit": {int(mnist.test_labels[0])}' in answer
    # POST /api/read documents lines and separators with its example: a two-line receipt, nulls and all.
    read = page.locator("#operations-default-read_api_read_post")
    read.locator(".opblock-summary").click()
    assert "lines" in read.locator(".opblock-description-wrapper").first.inner_text()
    example = read.locator(".responses-wrapper .highlight-code").first.inner_text()
    assert '"text": "12.50\\n-3"' in example and '"char": "."' in example and '"digit": null' in example
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-docs.png"), full_page=True)
    assert elsewhere == [] and errors == []
    context.close()
