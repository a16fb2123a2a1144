"""The page-test harness itself: it sees frame heights and catches any request off this machine."""

from __future__ import annotations

import pytest
from browser import is_local

pytestmark = pytest.mark.browser


def test_local_and_remote_urls_are_told_apart():
    assert is_local("file:///tmp/report.html") and is_local("data:text/plain,x")
    assert is_local("http://127.0.0.1:8080/api") and is_local("http://localhost/x")
    assert not is_local("https://cdn.plot.ly/plotly.min.js")
    assert not is_local("https://fonts.googleapis.com/css")


def test_the_harness_measures_frames_and_catches_a_remote_request(browser, tmp_path):
    inner = tmp_path / "inner.html"
    inner.write_text("<html><body><div style='height:900px'>report</div></body></html>")
    page = tmp_path / "page.html"
    page.write_text(
        "<!DOCTYPE html><html><head>"
        "<script src='https://cdn.example.invalid/lib.js'></script></head><body>"
        "<h1 id='title'>Report</h1>"
        f"<iframe src='{inner.name}' style='height:1000px;width:100%;border:0'></iframe>"
        # A frame of the default 150 px whose content is 900 px high: clipped.
        "<iframe srcdoc=\"<div style='height:900px'>report</div>\"></iframe>"
        "</body></html>"
    )
    browser.open(page.as_uri(), wait_css="#title")
    assert browser.assert_visible("#title")[0]["text"] == "Report"
    frames = browser.frames()
    assert frames[0]["height"] == 1000
    assert frames[1]["height"] < 200 and frames[1]["content_height"] > 900
    with pytest.raises(AssertionError, match="iframe /1"):
        browser.assert_frames(min_height=300)
    assert browser.nonlocal_requests() == ["https://cdn.example.invalid/lib.js"]
