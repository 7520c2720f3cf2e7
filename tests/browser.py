"""Headless Chromium for tests, driven over the DevTools protocol on a pipe (stdlib only).

``--remote-debugging-pipe``: Chromium reads commands from its file descriptor 3
and writes answers and events to 4, one JSON object per message, each ended
by a NUL byte. No port is opened and nothing is fetched from the network;
``load`` records every request the page makes, so a test can assert that a
page needs only itself.
"""

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars", "--remote-debugging-pipe",
         "--host-resolver-rules=MAP * ~NOTFOUND")  # no name resolves: nothing leaves the machine
TIMEOUT = 60.0
# argv: the command pipe's read end, the answer pipe's write end, then Chromium's command line.
TRAMPOLINE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
              "os.close(int(sys.argv[1])); os.close(int(sys.argv[2])); "
              "os.execv(sys.argv[3], sys.argv[3:])")


def chromium_missing():
    """None when Debian's chromium is installed, else the one-line reason to skip."""
    if CHROMIUM.is_file():
        return None
    return f"{CHROMIUM} not found (apt-get install chromium)"


class Page:
    """What one page load gave: ``errors`` (console errors, uncaught exceptions,
    failed loads), ``requests`` (every URL fetched), ``screenshot`` (PNG bytes),
    ``value`` (what ``evaluate`` returned)."""

    def __init__(self):
        self.errors, self.requests, self.screenshot, self.value = [], [], None, None


class Chromium:
    """One headless browser; use as a context manager."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="n2prune-chromium-")
        commands, self._to_browser = os.pipe()
        self._from_browser, answers = os.pipe()
        # A tiny Python moves the two pipe ends to 3 and 4, where Chromium expects them,
        # from numbers above 9, so that neither sits on 3 or 4 already.
        commands, answers = _high(commands), _high(answers)
        self.process = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(commands), str(answers), str(CHROMIUM),
             *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            pass_fds=(commands, answers), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)  # its own process group: a hung browser goes whole
        os.close(commands)
        os.close(answers)
        self._buffer, self._next_id, self.events = b"", 0, []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close")
        with contextlib.suppress(OSError):
            os.close(self._to_browser)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process.stderr.close()
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _message(self, deadline):
        """The next message from Chromium (answer or event), waiting until ``deadline``."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium quit: {self.process.stderr.read()[-2000:]!r}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method, params=None, session=None):
        """The result of one command; events that arrive meanwhile go to ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method, session, timeout=TIMEOUT):
        """The first event ``method`` of ``session`` (seen already or still to come)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            self.events.append(self._message(deadline))

    def drain(self, seconds):
        """Collect the events of the next ``seconds`` (late errors, timers)."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while True:
                self.events.append(self._message(deadline))

    def load(self, url, *, javascript=True, size=(1200, 2000), evaluate=None):
        """Open ``url`` in a new tab of ``size`` (CSS pixels), wait for its load
        event, run ``evaluate`` (a JavaScript expression) if given, take a screenshot."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        self.events = []
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False},
                  session=session)
        self.send("Emulation.setScriptExecutionDisabled", {"value": not javascript},
                  session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        self.drain(0.3)
        page = Page()
        if evaluate:
            result = self.send("Runtime.evaluate", {"expression": evaluate, "returnByValue": True},
                               session=session)
            if "exceptionDetails" in result:
                page.errors.append(_exception_text(result["exceptionDetails"]))
            page.value = result.get("result", {}).get("value")
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session=session)
        page.screenshot = base64.b64decode(shot["data"])
        self.drain(0.1)
        _collect(page, [e for e in self.events if e.get("sessionId") == session])
        self.send("Target.closeTarget", {"targetId": target})
        return page


def _high(fd):
    """``fd`` moved to the lowest free descriptor number from 10 on."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


def _exception_text(details):
    exception = details.get("exception") or {}
    return exception.get("description") or details.get("text", "exception")


def _collect(page, events):
    """Errors and requests out of a page's DevTools events."""
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            page.errors.append(_exception_text(params["exceptionDetails"]))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            page.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                        for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            page.errors.append(f"{params['entry'].get('text')} ({params['entry'].get('url', '')})")
        elif method == "Network.requestWillBeSent":
            page.requests.append(params["request"]["url"])
