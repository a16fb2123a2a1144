"""A real headless browser for the tests of what people open (Debian's chromium + chromedriver).

    with Browser() as browser:
        browser.open(page.as_uri(), wait_css="table")
        browser.assert_visible("table", min_height=100)
        browser.assert_frames(min_height=300)     # every iframe shows its whole content
        assert browser.nonlocal_requests() == []  # the page fetched nothing from the network

Only ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` are used (Selenium never downloads a
browser). Every request a page makes is read back from Chrome's performance log; a request is
local when its scheme is file/data/blob/about or its host is loopback. As a second guard, every
other host name fails to resolve, so a page that tries the internet fails fast instead of
hanging on this machine's closed network.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = (
    "install Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver; "
    ".ci/run does this) to run them"
)
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
LOCAL_SCHEMES = {
    "file",
    "data",
    "blob",
    "about",
    "chrome",
    "chrome-untrusted",
    "chrome-error",
    "devtools",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Every iframe of the page (and of same-origin frames inside it) with its rendered box and, when
# readable, the height of its content.
_FRAMES_JS = """
const out = [];
function walk(doc, path) {
  doc.querySelectorAll('iframe').forEach((frame, i) => {
    const box = frame.getBoundingClientRect();
    let content = null;
    try {
      const inner = frame.contentDocument;
      if (inner && inner.body) {
        content = inner.documentElement.scrollHeight;
        walk(inner, path + '/' + i);
      }
    } catch (e) { content = 'cross-origin'; }
    out.push({path: path + '/' + i, width: box.width, height: box.height,
              content_height: content});
  });
}
walk(document, '');
return out;
"""


def browser_available() -> bool:
    """Whether this machine has the browser the page tests need."""
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


def is_local(url: str) -> bool:
    """Whether a request to ``url`` stays on this machine."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and (parts.hostname or "") in LOCAL_HOSTS


class Browser:
    """Headless Chromium through Selenium, with a fresh profile each time.

    Args:
        width: Window width in CSS pixels (1400: the width the leaderboard must fit).
        height: Window height.
    """

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        self.width, self.height = width, height
        self.driver = None
        self._profile: str | None = None
        self._requests: list[str] = []

    def start(self) -> Browser:
        """Starts chromedriver and Chromium (about 1-3 s here)."""
        from selenium import webdriver  # noqa: PLC0415 - only page tests need selenium
        from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self._profile}")
        options.add_argument(f"--window-size={self.width},{self.height}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        return self

    def close(self) -> None:
        """Ends Chromium and chromedriver and removes the profile."""
        if self.driver is not None:
            self.driver.quit()
            self.driver = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ pages
    def open(self, url: str, wait_css: str | None = None, timeout: float = 60.0) -> float:
        """Loads ``url`` and waits until the document is complete (and ``wait_css`` is visible).

        Returns:
            The seconds it took.
        """
        from selenium.webdriver.common.by import By  # noqa: PLC0415
        from selenium.webdriver.support import expected_conditions as ec  # noqa: PLC0415
        from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

        self._read_network_log()
        self._requests.clear()  # requests() reports this page only
        self.driver.get_log("browser")  # reading empties it: console_errors() is this page's
        started = time.perf_counter()
        self.driver.get(url)
        wait = WebDriverWait(self.driver, timeout)
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        if wait_css:
            wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, wait_css)))
        return time.perf_counter() - started

    def script(self, code: str, *args: object) -> object:
        """Runs JavaScript in the page and returns its result."""
        return self.driver.execute_script(code, *args)

    def visible(self, css: str, min_width: float = 1, min_height: float = 1) -> list[dict]:
        """The boxes of the displayed elements matching ``css`` that are at least that big."""
        from selenium.webdriver.common.by import By  # noqa: PLC0415

        boxes = []
        for element in self.driver.find_elements(By.CSS_SELECTOR, css):
            box = element.rect
            if element.is_displayed() and box["width"] >= min_width and box["height"] >= min_height:
                boxes.append({**box, "text": element.text})
        return boxes

    def assert_visible(
        self, css: str, min_count: int = 1, min_width: float = 1, min_height: float = 1
    ) -> list[dict]:
        """Asserts that at least ``min_count`` elements matching ``css`` are displayed."""
        boxes = self.visible(css, min_width, min_height)
        assert len(boxes) >= min_count, (
            f"{css}: {len(boxes)} visible box(es) of at least {min_width}x{min_height} px, "
            f"expected {min_count}"
        )
        return boxes

    def frames(self) -> list[dict]:
        """Every iframe with its rendered height and its content's height."""
        return self.driver.execute_script(_FRAMES_JS)

    def wait_frames(self, min_height: float = 300, timeout: float = 60.0) -> list[dict]:
        """Waits until every iframe is at least ``min_height`` high and their heights settle."""
        from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

        WebDriverWait(self.driver, timeout).until(
            lambda _: (frames := self.frames()) and all(f["height"] >= min_height for f in frames)
        )
        last, since, end = None, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < end:
            heights = [f["height"] for f in self.frames()]
            if heights != last:
                last, since = heights, time.monotonic()
            elif time.monotonic() - since >= 1.0:
                break
            time.sleep(0.2)
        return self.frames()

    def assert_frames(self, min_height: float = 300, tolerance: float = 40) -> list[dict]:
        """Asserts that every iframe is at least ``min_height`` high and shows all its content."""
        frames = self.frames()
        assert frames, "the page has no iframe"
        for frame in frames:
            assert frame["height"] >= min_height, f"iframe {frame['path']}: {frame['height']} px"
            content = frame["content_height"]
            if isinstance(content, int | float):
                assert frame["height"] + tolerance >= content, f"iframe clipped: {frame}"
        return frames

    def page_width(self) -> int:
        """The document's scroll width (wider than the window means a horizontal scroll bar)."""
        return int(self.driver.execute_script("return document.documentElement.scrollWidth"))

    def screenshot(self, path: Path, max_height: int = 16000) -> Path:
        """A PNG of the whole page (up to ``max_height`` pixels)."""
        height = min(
            int(self.driver.execute_script("return document.documentElement.scrollHeight")),
            max_height,
        )
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def console_errors(self) -> list[dict]:
        """The severe console messages (script errors) since the last :meth:`open`."""
        return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    # ---------------------------------------------------------------------------- network
    def _read_network_log(self) -> None:
        for entry in self.driver.get_log("performance"):  # reading the log empties it
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self._requests.append(message["params"]["request"]["url"])

    def requests(self) -> list[str]:
        """Every URL the page (all its frames) requested since the last :meth:`open`."""
        self._read_network_log()
        return list(self._requests)

    def nonlocal_requests(self) -> list[str]:
        """The requests that would have left this machine."""
        return [url for url in self.requests() if not is_local(url)]
