"""Builds the kedro-viz site with dataset previews, without any request off the machine, and
optionally serves it on 127.0.0.1 (``make viz-build``, ``make viz``).

    python scripts/viz_build.py                  # build/ of this project
    python scripts/viz_build.py --serve 4141     # build, then serve http://127.0.0.1:4141/
    python scripts/viz_build.py --project DIR    # another copy of the project (tests)

The build must be served over HTTP: from ``file://`` the browser blocks its module script and
its ``api/`` requests (CORS), so the page stays blank. ``kedro viz build`` links Google Fonts
in ``index.html`` (and, when telemetry consent is not refused, injects Heap analytics): those
tags are removed, the page then falls back to system fonts. Previews are read from the storage
root at build time (a snapshot of the data then).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
# A tag that would make the page load something from another host.
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*", re.I | re.S)
_EXTERNAL_SCRIPT = re.compile(
    r"<script\b[^>]*>(?:(?!</script>).)*?(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}(?:(?!</script>).)*"
    r"</script>\s*",
    re.I | re.S,
)
_ANY_EXTERNAL = re.compile(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def offline_index(html: str) -> str:
    """``index.html`` without the tags that reach other hosts.

    Args:
        html: The built ``index.html``.

    Returns:
        The page with external ``<link>`` tags and scripts that load from other hosts removed.

    Raises:
        RuntimeError: When a reference to another host is still left (a kedro-viz upgrade
            changed the page): better no site than one that phones out.
    """
    cleaned = _EXTERNAL_SCRIPT.sub("", _EXTERNAL_LINK.sub("", html))
    left = _ANY_EXTERNAL.findall(cleaned)
    if left:
        raise RuntimeError(f"index.html still references other hosts: {left}")
    return cleaned


def build(project: Path) -> Path:
    """Runs ``kedro viz build --include-previews`` in ``project`` and makes it offline.

    Args:
        project: The Kedro project's folder (the site goes to its ``build/``).

    Returns:
        The build folder.
    """
    kedro = str(Path(sys.executable).with_name("kedro"))
    env = {**os.environ, "DO_NOT_TRACK": "1", "KEDRO_DISABLE_TELEMETRY": "1"}
    subprocess.run([kedro, "viz", "build", "--include-previews"], cwd=project, env=env, check=True)
    site = project / "build"
    index = site / "index.html"
    index.write_text(offline_index(index.read_text(encoding="utf-8")), encoding="utf-8")
    # The telemetry snippet is shipped as a separate page too; nothing links it.
    (site / "telemetry.html").unlink(missing_ok=True)
    return site


def serve(site: Path, port: int) -> None:
    """Serves ``site`` on 127.0.0.1 until interrupted."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        sys.stderr.write(f"Kedro-Viz on http://127.0.0.1:{port}/ (Ctrl-C stops it)\n")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> None:
    """Builds, then serves when ``--serve PORT`` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=PROJECT)
    parser.add_argument("--serve", type=int, metavar="PORT", default=None)
    parser.add_argument("--no-build", action="store_true", help="serve the existing build")
    args = parser.parse_args(argv)
    site = args.project / "build"
    if not args.no_build:
        site = build(args.project)
    if args.serve is not None:
        serve(site, args.serve)


if __name__ == "__main__":
    main()
