"""What a reviewer sees: a `dvc plots diff` page opened in headless Chromium, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# appended to a copy of the page: once everything has loaded, count the images that rendered
_PROBE = """<script>
window.addEventListener("load", () => {
  const shown = [...document.images].filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.setAttribute("data-rendered", shown + "/" + document.images.length);
});
</script>"""


def chromium() -> str | None:
    """Debian's chromium (or another Chromium-based browser on PATH), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def rendered_images(page: Path, browser: str) -> tuple[int, int]:
    """(rendered, total) images of ``page``, loaded by Chromium with no network."""
    probe = page.with_name(page.stem + ".probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # nothing leaves the machine
         "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'data-rendered="(\d+)/(\d+)"', result.stdout)
    if not found:
        raise AssertionError(f"Chromium rendered no page: {result.stderr[-2000:]}")
    return int(found.group(1)), int(found.group(2))
