# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe apply: a rollback armed before a network change, disarmed only when connectivity is verified.

State machine of one armed rollback, one file per change under ``/run/virtforge/hostnet/``::

    <id>.armed.json  --(module verified: rename to .disarming, delete)-->           disarmed
          |          --(module failed: rename to .firing, restore, delete)-->       rolled back by the module
          |          --(deadline: watchdog renames to .firing, restores)-->  <id>.done.json
    <id>.pid         the watchdog's pid, written by the watchdog itself when it starts

Renaming the armed file is atomic, so exactly one of the module and the watchdog takes it.
The watchdog is a detached process (double fork, its own session, an argument list) running a
self-contained program (it cannot import this collection: the module's files are gone when it fires).

At the start of every run, :meth:`RollbackStore.recover` looks at what earlier runs left behind:
a live watchdog is waited for; an armed or half-fired rollback whose watchdog is dead (the run was
aborted and the watchdog killed) is restored or discarded as ``stale_rollback`` says; a rollback
the watchdog completed is reported. Nothing is left pending that could undo the next run's work.
"""

from __future__ import annotations

import json
import os
import sys
import time

STATE_DIR = "/run/virtforge/hostnet"

# The watchdog program. Self-contained on purpose; argv: state file path.
WATCHDOG_SOURCE = r'''
import json, os, subprocess, sys, time
path = sys.argv[1]
base = path[:-len(".armed.json")]
def write(target, data):
    tmp = target + ".tmp%d" % os.getpid()
    with open(tmp, "w") as handle:
        handle.write(data)
    os.rename(tmp, target)
write(base + ".pid", str(os.getpid()))
try:
    with open(path) as handle:
        state = json.load(handle)
except (OSError, ValueError):
    # gone before this started (the module gave up waiting for it): leave no pid file behind
    try:
        os.unlink(base + ".pid")
    except OSError:
        pass
    sys.exit(0)
while True:
    if not os.path.exists(path):
        sys.exit(0)
    if time.time() >= state["deadline"]:
        break
    time.sleep(0.2)
firing = base + ".firing.json"
try:
    os.rename(path, firing)
except OSError:
    sys.exit(0)
results = []
for step in state["steps"]:
    try:
        if "argv" in step:
            proc = subprocess.run(step["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=120, check=False)
            results.append(dict(step=" ".join(step["argv"]), rc=proc.returncode,
                                stderr=proc.stderr.decode("utf-8", "replace").strip()[-500:]))
        elif "write" in step:
            write(step["write"], step["content"])
            os.chmod(step["write"], step.get("mode", 0o644))
            results.append(dict(step="write " + step["write"], rc=0))
        elif "remove" in step:
            if os.path.exists(step["remove"]):
                os.unlink(step["remove"])
            results.append(dict(step="remove " + step["remove"], rc=0))
    except Exception as exc:
        results.append(dict(step=repr(step)[:200], rc=-1, stderr=str(exc)))
state.update(status="rolled-back", fired_by="watchdog", fired_at=time.time(), results=results)
write(base + ".done.json", json.dumps(state))
os.unlink(firing)
'''

# A TCP probe run in the target namespace: exit 0 when the host answered (accept or refuse).
PROBE_SOURCE = r'''
import errno, socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.close()
except ConnectionRefusedError:
    pass
except OSError as exc:
    sys.stderr.write("%s\n" % exc)
    sys.exit(1)
'''


def pid_alive(pid, marker=None):
    """True when ``pid`` runs (and, with ``marker``, its command line contains it: no pid reuse)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if marker:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                return marker.encode() in handle.read()
        except OSError:
            return False
    return True


def spawn_detached(argv):
    """Start ``argv`` fully detached: fork, setsid, fork again, exec; the middle child exits at once."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.setsid()
            if os.fork() == 0:
                os.chdir("/")
                fd = os.open(os.devnull, os.O_RDWR)
                for target in (0, 1, 2):
                    os.dup2(fd, target)
                os.closerange(3, 4096)
                os.execv(argv[0], argv)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


class Armed(object):
    def __init__(self, ident, path, state):
        self.ident = ident
        self.path = path
        self.state = state


class RollbackStore(object):
    """Armed rollbacks on disk. ``clock``, ``sleep``, ``alive`` and ``spawn`` are injectable for tests."""

    def __init__(self, directory=STATE_DIR, clock=time.time, sleep=time.sleep, alive=pid_alive,
                 spawn=spawn_detached, python=None):
        self.directory = directory
        self.clock = clock
        self.sleep = sleep
        self.alive = alive
        self.spawn = spawn
        self.python = python or sys.executable

    def _base(self, ident):
        return os.path.join(self.directory, ident)

    def _write(self, path, data):
        tmp = "%s.tmp%d" % (path, os.getpid())
        with open(tmp, "w") as handle:
            json.dump(data, handle)
        os.rename(tmp, path)

    def _read(self, path):
        try:
            with open(path) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def _pid(self, ident):
        try:
            with open(self._base(ident) + ".pid") as handle:
                return int(handle.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _cleanup(self, ident, *suffixes):
        for suffix in suffixes:
            try:
                os.unlink(self._base(ident) + suffix)
            except FileNotFoundError:
                pass

    # ---- arming ----------------------------------------------------------------------------
    def arm(self, scope, name, steps, timeout, description, start_timeout=10.0):
        """Write the armed state and start the watchdog; return an :class:`Armed` once it runs."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        now = self.clock()
        ident = "%s--%s--%d-%d" % (scope, name, int(now * 1000), os.getpid())
        path = self._base(ident) + ".armed.json"
        state = dict(ident=ident, scope=scope, interface=name, description=description, steps=steps,
                     armed_at=now, deadline=now + timeout, timeout=timeout, status="armed")
        self._write(path, state)
        self.spawn([self.python, "-c", WATCHDOG_SOURCE, path])
        waited = 0.0
        while not self._pid(ident):
            if waited >= start_timeout:
                self._cleanup(ident, ".armed.json")
                raise RuntimeError("the rollback watchdog did not start within %.0f s" % start_timeout)
            self.sleep(0.05)
            waited += 0.05
        return Armed(ident, path, state)

    def disarm(self, armed):
        """True when disarmed in time; False when the watchdog already took the rollback."""
        taken = self._base(armed.ident) + ".disarming.json"
        try:
            os.rename(armed.path, taken)
        except FileNotFoundError:
            return False
        self._cleanup(armed.ident, ".disarming.json", ".pid")
        return True

    def take(self, armed):
        """Take the rollback from the watchdog to run it now. False when the watchdog already fired."""
        try:
            os.rename(armed.path, self._base(armed.ident) + ".firing.json")
        except FileNotFoundError:
            return False
        return True

    def finish(self, armed):
        self._cleanup(armed.ident, ".firing.json", ".pid")

    def wait_done(self, ident, timeout=180.0):
        """Wait for a watchdog that fired to write its result; return the done state or None."""
        waited = 0.0
        done = self._base(ident) + ".done.json"
        while waited < timeout:
            state = self._read(done)
            if state is not None:
                self._cleanup(ident, ".done.json", ".pid")
                return state
            if not self.alive(self._pid(ident), ident):
                break
            self.sleep(0.2)
            waited += 0.2
        state = self._read(done)
        if state is not None:
            self._cleanup(ident, ".done.json", ".pid")
        return state

    # ---- what earlier runs left ------------------------------------------------------------
    def entries(self, scope):
        """(ident, phase) of every rollback state of ``scope`` on disk."""
        out = []
        if not os.path.isdir(self.directory):
            return out
        for entry in sorted(os.listdir(self.directory)):
            for phase in ("armed", "firing", "done", "disarming"):
                suffix = ".%s.json" % phase
                if entry.endswith(suffix) and entry.startswith(scope + "--"):
                    out.append((entry[:-len(suffix)], phase))
        return out

    def recover(self, scope, policy, execute, check_mode=False):
        """Deal with what earlier runs left for ``scope``; return reports (list of dicts).

        ``execute(steps)`` runs restore steps and returns their results; ``policy`` is
        ``restore`` or ``discard`` for rollbacks whose watchdog is dead.
        """
        reports = []
        for ident, phase in self.entries(scope):
            base = self._base(ident)
            pid = self._pid(ident)
            alive = self.alive(pid, ident)
            if phase in ("armed", "firing") and alive:
                # an earlier run's rollback is still pending: let it finish before touching anything
                state = self._read(base + ".%s.json" % phase) or {}
                wait = max(0.0, state.get("deadline", self.clock()) - self.clock()) + 120.0
                done = self.wait_done(ident, timeout=wait)
                reports.append(dict(ident=ident, interface=state.get("interface"), action="waited",
                                    status=(done or {}).get("status", "unknown"),
                                    description=state.get("description"),
                                    results=(done or {}).get("results", [])))
                continue
            if phase == "done":
                state = self._read(base + ".done.json") or {}
                if not check_mode:
                    self._cleanup(ident, ".done.json", ".pid")
                reports.append(dict(ident=ident, interface=state.get("interface"), action="reported",
                                    status=state.get("status", "rolled-back"),
                                    description=state.get("description"), results=state.get("results", [])))
                continue
            if phase == "disarming":
                if not check_mode:
                    self._cleanup(ident, ".disarming.json", ".pid")
                continue
            # armed or half-fired with a dead watchdog: stale
            state = self._read(base + ".%s.json" % phase) or {}
            report = dict(ident=ident, interface=state.get("interface"), phase=phase,
                          description=state.get("description"), status="stale")
            if check_mode:
                report["action"] = "would-%s" % policy
            elif policy == "restore":
                report.update(action="restored", results=execute(state.get("steps") or []))
                self._cleanup(ident, ".%s.json" % phase, ".pid")
            else:
                report.update(action="discarded")
                self._cleanup(ident, ".%s.json" % phase, ".pid")
            reports.append(report)
        return reports


def default_verify_target(environ=None):
    """The address the controller came in on (first field of SSH_CONNECTION), if any."""
    conn = (environ if environ is not None else os.environ).get("SSH_CONNECTION", "")
    parts = conn.split()
    return parts[0] if parts else None


def probe_argv(method, target, port, timeout, netns=None, python=None, ping=None):
    """Argument list of one connectivity probe, inside ``netns`` when set."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    if method == "ping":
        return prefix + [ping or "ping", "-c", "1", "-W", str(max(1, int(timeout))), target]
    return prefix + [python or sys.executable, "-c", PROBE_SOURCE, target, str(port), str(timeout)]


def verify(run, argv_factory, deadline_seconds, clock=time.time, sleep=time.sleep, interval=1.0):
    """Probe until it succeeds or ``deadline_seconds`` pass. ``run(argv)`` returns (rc, out, err)."""
    start = clock()
    attempts = 0
    last = ""
    while True:
        attempts += 1
        rc, _out, err = run(argv_factory())
        if rc == 0:
            return True, attempts, ""
        last = (err or "").strip()
        if clock() - start >= deadline_seconds:
            return False, attempts, last
        sleep(interval)
