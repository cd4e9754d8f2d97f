"""Small page helpers shared by the browser tests and scripts/screenshots.py."""

from __future__ import annotations

import re

LONG = 180_000  # ms; the test machines are small and shared


def open_app(page, url):
    page.set_default_timeout(LONG)
    page.goto(url, timeout=LONG)
    map_canvas(page).wait_for(state="visible", timeout=LONG)


def map_canvas(page):
    return page.locator(".mstgat-map .bk-events").first


JS_TEXT = """e => {
  const r = e.shadowRoot;
  if (!r) return e.textContent;
  return Array.from(r.childNodes).filter(n => n.nodeName !== 'STYLE' && n.nodeName !== 'LINK')
    .map(n => n.textContent).join(' ').trim();
}"""


def text_of(page, selector) -> str:
    """Text of a Panel component (its content lives in a shadow root)."""
    text = page.locator(selector).first.evaluate(JS_TEXT)
    return text.strip()


def status_text(page) -> str:
    return text_of(page, ".mstgat-status")


def header_text(page) -> str:
    return text_of(page, ".mstgat-explain-header")


def wait_text(page, selector, pattern, timeout=LONG):
    """Wait until the element's text matches the regex ``pattern``; return the text."""
    rx = re.compile(pattern)
    import time

    deadline = time.time() + timeout / 1000
    text = ""
    while time.time() < deadline:
        try:
            text = text_of(page, selector)
        except Exception:
            text = ""
        if rx.search(text):
            return text
        page.wait_for_timeout(300)
    try:
        err = text_of(page, ".mstgat-error")[:300]
        status = text_of(page, ".mstgat-status")[:300]
    except Exception:
        err = status = "?"
    raise AssertionError(f"{selector!r} never matched {pattern!r}; last text: {text[:300]!r}; "
                         f"status: {status!r}; error: {err!r}")


def select_option(page, label_text, option):
    """Pick ``option`` in the <select> whose options include it."""
    sel = page.locator("select").filter(has=page.locator(f"option:text-is('{option}')")).first
    sel.select_option(label=option)
