"""Runs a line-printing process (the legacy peer, `nomq sub`, ...) and waits on its output lines
with bounded timeouts, so that tests synchronise on what a process says instead of sleeping."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "nomq_legacy_peer.py")
DEFAULT_TIMEOUT = float(os.environ.get("NOMQ_TEST_TIMEOUT", "15"))


class LineProcess:
    """A child process whose stdout lines are collected by a thread.

    wait_line(pred) returns the first line (str) not yet consumed that satisfies pred, or fails
    the test with everything seen so far when `timeout` passes."""

    def __init__(self, cmd, env=None, name=None):
        self.cmd = cmd
        self.name = name or os.path.basename(cmd[1] if cmd[0] == sys.executable else cmd[0])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env)
        self.queues = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        self.seen = []          # stdout lines consumed so far
        self.stderr_lines = []  # every stderr line
        self.stderr_seen = []   # stderr lines consumed by wait_line(stream="stderr")
        threading.Thread(target=self._pump, args=(self.proc.stdout, "stdout"), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, "stderr"), daemon=True).start()

    def _pump(self, stream, name):
        try:
            for line in stream:
                line = line.rstrip("\n")
                if name == "stderr":
                    self.stderr_lines.append(line)
                self.queues[name].put(line)
        except (ValueError, OSError):
            pass  # closed by stop()
        self.queues[name].put(None)

    def wait_line(self, pred, timeout=DEFAULT_TIMEOUT, what="a matching line", stream="stdout"):
        q = self.queues[stream]
        seen = self.seen if stream == "stdout" else self.stderr_seen
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._report(f"timeout after {timeout}s waiting for {what} "
                                                  f"on {stream}"))
            try:
                line = q.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                q.put(None)  # keep the end marker for later waits
                raise AssertionError(self._report(f"process ended (rc {self.proc.poll()}) while "
                                                  f"waiting for {what} on {stream}"))
            seen.append(line)
            if pred(line):
                return line

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(self._report(f"did not exit within {timeout}s")) from None
        # Drain what is left so callers can inspect every line.
        while True:
            try:
                line = self.queues["stdout"].get(timeout=timeout)
            except queue.Empty:
                break
            if line is None:
                self.queues["stdout"].put(None)
                break
            self.seen.append(line)
        return rc

    def _report(self, msg):
        return (f"{self.name}: {msg}\ncommand: {' '.join(self.cmd)}\nstdout so far:\n  "
                + "\n  ".join(self.seen[-40:]) + "\nstderr:\n  " + "\n  ".join(self.stderr_lines[-40:]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def parse_json(line):
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def matches(obj, fields):
    return obj is not None and all(obj.get(k) == v for k, v in fields.items())


class PeerProcess(LineProcess):
    """The legacy peer run as a device; its lines are JSON events."""

    def __init__(self, args, env=None):
        super().__init__([sys.executable, PEER] + list(args), env=env, name="legacy-peer")

    def wait_event(self, event, timeout=DEFAULT_TIMEOUT, **fields):
        fields = dict(fields, event=event)
        line = self.wait_line(lambda l: matches(parse_json(l), fields), timeout,
                              what=json.dumps(fields))
        return json.loads(line)

    def events(self, event):
        return [o for o in (parse_json(l) for l in self.seen) if o and o.get("event") == event]
