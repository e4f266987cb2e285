"""Every console page, read as assistive technology reads it: each form control has a label,
each button a name, each chart a text alternative and its data as a table; ids are unique; the
stylesheet keeps a visible keyboard focus and colours with enough contrast (WCAG 2.1 AA)."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from rolegate.console.charts import COLOURS
from tests.integration.console.conftest import Browser, local
from tests.integration.console.test_key_edit import new_key
from tests.support.markup import Element, parse_page

CONTROLS = ("input", "select", "textarea")
UNLABELLED_INPUTS = ("hidden", "submit", "button")


def problems_of(page: str) -> list[str]:
    """What a screen-reader user would miss on `page`."""
    elements = parse_page(page)
    by_id: dict[str, Element] = {}
    found = []
    for element in elements:
        if "id" in element.attrs:
            if element.attrs["id"] in by_id:
                found.append(f"id {element.attrs['id']!r} twice")
            by_id[element.attrs["id"]] = element
    labelled = {element.attrs.get("for") for element in elements if element.tag == "label"}
    for element in elements:
        if _needs_label(element) and not (element.attrs.get("id") in labelled
                                          or "aria-label" in element.attrs
                                          or "label" in element.ancestors):
            found.append(f"<{element.tag} name={element.attrs.get('name')!r}> has no label")
        if element.tag == "button" and not (element.content or element.attrs.get("aria-label")):
            found.append("a button without a name")
        if element.tag == "svg":
            found += _svg_problems(element, by_id)
        if element.tag == "figure" and "chart" in element.attrs.get("class", ""):
            found += _figure_problems(element, elements)
    titles = [element for element in elements if element.tag == "title"
              and "svg" not in element.ancestors]
    if not (titles and titles[0].content):
        found.append("the page has no title")
    if not any(element.tag == "html" and element.attrs.get("lang") for element in elements):
        found.append("the page names no language")
    return found


def _needs_label(element: Element) -> bool:
    return element.tag in CONTROLS and element.attrs.get("type") not in UNLABELLED_INPUTS


def _svg_problems(svg: Element, by_id: dict[str, Element]) -> list[str]:
    if svg.attrs.get("aria-hidden") == "true":
        return []
    if svg.attrs.get("role") != "img":
        return ["an svg that is neither an image nor hidden"]
    names = svg.attrs.get("aria-labelledby", "").split()
    texts = [by_id[name].content if name in by_id else "" for name in names]
    if len(texts) < 2 or not all(texts):
        return [f"the chart {names} lacks a title and a description"]
    return []


def _figure_problems(figure: Element, elements: list[Element]) -> list[str]:
    start = elements.index(figure)
    inside = [element for element in elements[start + 1:] if "figure" in element.ancestors]
    inside = inside[:next((i for i, e in enumerate(inside) if e.tag == "figure"), len(inside))]
    if not any(element.tag == "table" and "details" in element.ancestors for element in inside):
        return ["a chart without its data as a table"]
    return []


async def pages_of(browser: Browser, dev_issuer) -> dict[str, str]:
    """Every console page, with something in it: a key (created and edited), a usage record, a
    refusal, an explanation."""
    csrf = await browser.sign_in()
    token = dev_issuer.mint(roles=("rolegate.user",))
    await browser.client.post("/v1/chat/completions", headers={
        "Authorization": f"Bearer {token}"}, json={"model": "echo", "messages": []})
    await browser.client.get("/admin/keys", headers={"Authorization": f"Bearer {token}"})
    created = await browser.client.post("/console/keys", data={
        "csrf": csrf, "name": "ci", "owner": "team-a", "roles": "rolegate.user"})
    _, key_id = await new_key(browser, csrf)
    explained = await browser.client.post("/console/explain", data={
        "csrf": csrf, "key_id": key_id, "model": "echo"})
    pages = {"key created": created.text, "explained": explained.text}
    for path in ("/console", "/console?window=week", "/console/keys", f"/console/keys/{key_id}",
                 "/console/explain", "/console/decisions", "/console/usage",
                 "/console/usage?by=principal", "/console/policy"):
        response = await browser.client.get(path)
        assert response.status_code == 200, path
        pages[path] = response.text
    return pages


async def test_every_control_is_labelled_and_every_chart_has_text(open_browser, dev_issuer):
    pages = await pages_of(await open_browser(), dev_issuer)
    signing_in = await open_browser()
    start = await signing_in.client.get("/console/login")
    pages["sign-in"] = (await signing_in.client.get(local(start.headers["location"]))).text

    assert {name: problems_of(page) for name, page in pages.items()} == {
        name: [] for name in pages}
    assert pages["/console"].count('role="img"') == 5  # the charts were there to be checked


@pytest.mark.parametrize(("page", "problem"), [
    ('<html lang="en"><title>t</title><input id="a" name="a">', "has no label"),
    ('<html lang="en"><title>t</title><button></button>', "without a name"),
    ('<html lang="en"><title>t</title><svg role="img" aria-labelledby="x y"></svg>',
     "lacks a title"),
    ('<html lang="en"><title>t</title><figure class="chart"><svg aria-hidden="true"></svg>'
     "</figure>", "without its data"),
    ('<html><title>t</title>', "no language")],
    ids=["input", "button", "svg", "figure", "lang"])
def test_the_check_finds_what_it_looks_for(page, problem):
    assert any(problem in found for found in problems_of(page))


def luminance(colour: str) -> float:
    """WCAG 2.1 relative luminance of #rrggbb (or #rgb)."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    channels = [int(digits[index:index + 2], 16) / 255 for index in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


CSS = files("rolegate.console").joinpath("static/console.css").read_text()


def test_text_colours_have_aa_contrast_and_graphics_three_to_one():
    colours = dict(re.findall(r"--(\w+): (#[0-9a-fA-F]{3,6})", CSS))
    for name in ("fg", "muted", "accent", "deny", "allow"):
        assert contrast(colours[name], colours["bg"]) >= 4.5, name
    assert contrast("#ffffff", colours["accent"]) >= 4.5  # button text on its background
    for colour in COLOURS:  # chart lines: graphical objects (WCAG 1.4.11)
        assert contrast(colour, "#ffffff") >= 3, colour


def test_keyboard_focus_stays_visible():
    focus = re.search(r":focus-visible \{ outline: (\d+)px solid (#[0-9a-fA-F]{3,6})", CSS)
    assert focus is not None and int(focus.group(1)) >= 2
    assert contrast(focus.group(2), "#ffffff") >= 3  # the indicator against the page
    assert "outline: none" not in CSS and "outline: 0" not in CSS
