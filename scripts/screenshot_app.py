"""Screenshot of the FiftyOne App on a sardata dataset (grid with scene tags beside the embeddings map coloured by
scene), for the README.

Usage: ``python scripts/screenshot_app.py [DATASET] [--out docs/app.png]`` after ``sardata demo`` (default dataset
``demo-ssdd``). Needs Debian's ``chromium`` (``apt-get install chromium``); it runs headless with no network access.

The browser is driven over the Chrome DevTools protocol (a websocket, spoken with ``wsproto``): the vendor's
"Explore Enterprise" pop-up is configured away the way the App itself remembers a dismissal (its local-storage key),
the embeddings run is opened and coloured by ``scene.label`` by clicking as a person would, and the picture is taken
once the map is drawn.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

#: The App's own "pop-up seen" flag (fiftyone/server/static/assets/index.module-*.js).
ENTERPRISE_SEEN_KEY = "fiftyone-enterprise-tooltip-seen"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"{url} did not answer within {seconds} s")
            time.sleep(0.5)


class DevTools:
    """A minimal Chrome DevTools protocol client: one page target, JSON commands over a websocket."""

    def __init__(self, ws_url: str):
        from urllib.parse import urlparse

        import wsproto
        import wsproto.events as ev

        self._ev = ev
        url = urlparse(ws_url)
        self.sock = socket.create_connection((url.hostname, url.port), timeout=60)
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(ev.Request(host=f"{url.hostname}:{url.port}", target=url.path)))
        self._id = 0
        self._buffer = ""
        self._pending: list[dict] = []
        self._recv_until(lambda e: isinstance(e, ev.AcceptConnection))

    def _recv_until(self, done):
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("DevTools connection closed")
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, self._ev.TextMessage):
                    self._buffer += event.data
                    if event.message_finished:
                        message, self._buffer = json.loads(self._buffer), ""
                        if done(message):
                            return message
                elif isinstance(event, self._ev.Ping):
                    self.sock.sendall(self.ws.send(event.response()))
                elif done(event):
                    return event

    def call(self, method: str, **params) -> dict:
        self._id += 1
        call_id = self._id
        self.sock.sendall(self.ws.send(self._ev.Message(data=json.dumps({"id": call_id, "method": method,
                                                                          "params": params}))))
        reply = self._recv_until(lambda m: isinstance(m, dict) and m.get("id") == call_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_js(self, expression: str, seconds: float = 60, what: str = "") -> None:
        deadline = time.time() + seconds
        while not self.js(expression):
            if time.time() > deadline:
                raise SystemExit(f"timed out waiting for {what or expression}")
            time.sleep(0.5)


#: Centre of the innermost visible element whose own text is exactly ``text`` (null when none).
_FIND_TEXT = """(text => {
  const all = [...document.querySelectorAll('body *')].filter(e => e.offsetParent !== null);
  const hit = all.filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() === text));
  if (!hit.length) return null;
  const r = hit[hit.length - 1].getBoundingClientRect();
  return [r.x + r.width / 2, r.y + r.height / 2];
})"""


def take(dataset_name: str, out: Path, viz_key: str = "scenes_viz", color_field: str = "scene.label",
         size: str = "1600,900") -> Path:
    """Serves ``dataset_name`` in the App, opens the grid beside the embeddings panel and writes ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    import fiftyone as fo

    from sardata.cli.index import launch

    dataset = fo.load_dataset(dataset_name)
    has_viz = viz_key in dataset.list_brain_runs()
    port = _free_port()
    panels = [fo.Panel(type="Samples", pinned=True)]
    if has_viz:
        panels.append(fo.Panel(type="Embeddings"))
    # launch() also declares sar_stats' attributes, so the sidebar lists them
    session = launch(dataset_name, port=port, browser=False, spaces=fo.Space(children=panels, orientation="horizontal"))
    base = f"http://127.0.0.1:{port}"
    _wait_http(base + "/fiftyone")
    width, height = (int(v) for v in size.split(","))
    debug_port = _free_port()
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--remote-debugging-port={debug_port}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_http(f"http://127.0.0.1:{debug_port}/json/version")
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list").read())
            page = next(t for t in targets if t.get("type") == "page")
            tools = DevTools(page["webSocketDebuggerUrl"])
            tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                       mobile=False)
            tools.call("Page.navigate", url=base + "/")
            tools.wait_js("document.readyState === 'complete'", what="the App page")
            tools.js(f"localStorage.setItem({json.dumps(ENTERPRISE_SEEN_KEY)}, 'true')")
            tools.call("Page.navigate", url=f"{base}/datasets/{dataset_name}")
            tools.wait_js("document.querySelectorAll('img, canvas').length > 8", 120, "the sample grid")
            if has_viz:
                tools.wait_js(f"{_FIND_TEXT}({json.dumps(viz_key)})", 60, f"the embeddings run {viz_key}")
                _click(tools, viz_key)
                tools.wait_js("document.querySelectorAll('canvas').length > 0 && "
                              "[...document.querySelectorAll('body *')].some(e => e.className && "
                              "String(e.className).includes('emb-plot'))", 60, "the embeddings plot")
                _color_by(tools, color_field)
            # METADATA and PRIMITIVES closed, SAR_STATS (closed by default) opened: its fields come into view
            _toggle_sidebar_groups(tools, ("metadata", "primitives", "sar_stats"))
            time.sleep(4)  # thumbnails and the plot's last frame
            shot = tools.call("Page.captureScreenshot", format="png")
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.write_bytes(base64.b64decode(shot["data"]))
            os.replace(tmp, out)
        finally:
            browser.terminate()
            try:
                browser.wait(timeout=20)
            except subprocess.TimeoutExpired:
                browser.kill()
            session.close() if hasattr(session, "close") else None
    return out


def _click(tools: DevTools, text: str) -> bool:
    """A real mouse click (DevTools input events) on the element showing ``text``."""
    point = tools.js(f"{_FIND_TEXT}({json.dumps(text)})")
    if not point:
        return False
    x, y = point
    tools.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    tools.call("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
    tools.call("Input.dispatchMouseEvent", type="mouseReleased", x=x, y=y, button="left", clickCount=1)
    return True


def _toggle_sidebar_groups(tools: DevTools, groups) -> None:
    """Toggles sidebar groups (their names are editable inputs) open/closed with a real click on the "-"/"+" control
    at the right of the header."""
    for name in groups:
        point = tools.js(f"""(() => {{
          const input = [...document.querySelectorAll('input')]
            .find(e => e.value.toLowerCase() === {json.dumps(name)} && e.offsetParent !== null);
          if (!input) return null;
          const r = input.getBoundingClientRect(), y = r.y + r.height / 2;
          for (let x = r.x + 300; x > r.right; x -= 2) {{
            const el = document.elementFromPoint(x, y);
            if (el && el.closest('svg, button, [role=button]') && !el.closest('input')) return [x, y];
          }}
          return null;
        }})()""")
        if point:
            x, y = point
            tools.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
            for kind in ("mousePressed", "mouseReleased"):
                tools.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
            time.sleep(0.7)


def _color_by(tools: DevTools, color_field: str) -> None:
    """Opens the plot's colour-by menu and picks ``color_field`` (fails loudly if the App changed its markup)."""
    pick = f"""(() => {{
      const row = [...document.querySelectorAll('.emb-facet-row-label')]
        .find(e => e.textContent.trim() === {json.dumps(color_field)});
      if (!row) return false;
      (row.closest('button, [role=option], [role=menuitem], li') || row.parentElement).click();
      return true;
    }})()"""
    for _ in range(20):  # the menu closes when the panel re-renders while the plot loads: open it again
        if not tools.js("(() => { const b = document.querySelector('button.emb-facet-trigger'); if (b) b.click(); "
                        "return !!b; })()"):
            raise SystemExit("no colour-by control (button.emb-facet-trigger) in the embeddings panel")
        time.sleep(1)
        if tools.js(pick):
            break
    else:
        raise SystemExit(f"no colour-by option {color_field!r} in the embeddings panel")
    tools.wait_js(f"[...document.querySelectorAll('.emb-facet-trigger-label')].some(e => "
                  f"e.textContent.trim() === {json.dumps(color_field)})", 20, f"the map coloured by {color_field}")
    time.sleep(2)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="demo-ssdd")
    parser.add_argument("--out", type=Path, default=Path("docs/app.png"))
    parser.add_argument("--viz-key", default="scenes_viz", help="brain key of the 2-D map (sardata scenes)")
    parser.add_argument("--color-field", default="scene.label", help="field colouring the map")
    parser.add_argument("--size", default="1600,900")
    args = parser.parse_args(argv)
    out = take(args.dataset, args.out, args.viz_key, args.color_field, args.size)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    main()
