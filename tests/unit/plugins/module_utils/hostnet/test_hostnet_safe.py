"""The rollback state machine: arm, disarm, take, watchdog fired, stale recovery; with a fake clock and
fake processes, and once with the real detached watchdog process."""

import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import safe


class FakeClock(object):
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeWatchdogs(object):
    """Stands in for spawn_detached: 'starts' a watchdog by writing its pid file, tracks which are alive."""

    def __init__(self, start=True):
        self.started = []
        self.alive_pids = set()
        self.start = start
        self.next_pid = 5000

    def spawn(self, argv):
        assert argv[0] == sys.executable and argv[1] == "-c" and argv[3].endswith(".armed.json")
        self.started.append(argv)
        if self.start:
            self.next_pid += 1
            base = argv[3][:-len(".armed.json")]
            with open(base + ".pid", "w") as handle:
                handle.write(str(self.next_pid))
            self.alive_pids.add(self.next_pid)

    def alive(self, pid, marker=None):
        return pid in self.alive_pids

    def fire(self, path, results=None):
        """What the real watchdog does at its deadline."""
        base = path[:-len(".armed.json")]
        os.rename(path, base + ".firing.json")
        with open(base + ".firing.json") as handle:
            state = json.load(handle)
        state.update(status="rolled-back", fired_by="watchdog", results=results or [])
        with open(base + ".done.json", "w") as handle:
            json.dump(state, handle)
        os.unlink(base + ".firing.json")


@pytest.fixture
def world(tmp_path):
    clock = FakeClock()
    dogs = FakeWatchdogs()
    store = safe.RollbackStore(str(tmp_path / "state"), clock=clock, sleep=clock.sleep, alive=dogs.alive,
                               spawn=dogs.spawn)
    return store, clock, dogs


STEPS = [{"argv": ["ip", "-n", "lab", "addr", "add", "192.0.2.1/24", "dev", "br0"]}]


def files(store):
    return sorted(os.listdir(store.directory))


def test_arm_then_disarm_leaves_nothing(world):
    store, clock, dogs = world
    armed = store.arm("netns-lab", "br0", STEPS, 60, "bridge br0: test")
    assert len(dogs.started) == 1
    state = json.load(open(armed.path))
    assert state["deadline"] == clock.now + 60 and state["steps"] == STEPS and state["status"] == "armed"
    assert store.disarm(armed) is True
    assert files(store) == []


def test_disarm_after_the_watchdog_fired_says_so(world):
    store, _clock, dogs = world
    armed = store.arm("host", "br0", STEPS, 60, "x")
    dogs.fire(armed.path, results=[{"step": "ip ...", "rc": 0}])
    assert store.disarm(armed) is False
    done = store.wait_done(armed.ident, timeout=1)
    assert done["status"] == "rolled-back" and done["results"][0]["rc"] == 0
    assert files(store) == []


def test_module_takes_the_rollback_exactly_once(world):
    store, _clock, dogs = world
    armed = store.arm("host", "br0", STEPS, 60, "x")
    assert store.take(armed) is True
    # the watchdog can no longer take it: its rename would fail the same way
    assert store.take(armed) is False
    assert store.disarm(armed) is False
    store.finish(armed)
    assert files(store) == []


def test_watchdog_that_does_not_start_aborts_before_any_change(tmp_path):
    clock = FakeClock()
    dogs = FakeWatchdogs(start=False)
    store = safe.RollbackStore(str(tmp_path), clock=clock, sleep=clock.sleep, alive=dogs.alive, spawn=dogs.spawn)
    with pytest.raises(RuntimeError, match="did not start"):
        store.arm("host", "br0", STEPS, 60, "x", start_timeout=1)
    assert [f for f in os.listdir(tmp_path) if f.endswith(".json")] == []


def test_recover_restores_a_stale_rollback_with_a_dead_watchdog(world):
    store, _clock, dogs = world
    armed = store.arm("host", "br0", STEPS, 60, "bridge br0: change")
    dogs.alive_pids.clear()  # the run was aborted and its watchdog killed
    executed = []
    reports = store.recover("host", "restore", lambda steps: executed.append(steps) or [{"rc": 0}])
    assert executed == [STEPS]
    assert reports[0]["action"] == "restored" and reports[0]["status"] == "stale"
    assert reports[0]["interface"] == "br0" and reports[0]["description"] == "bridge br0: change"
    assert files(store) == []
    assert store.take(armed) is False


def test_recover_discards_when_asked(world):
    store, _clock, dogs = world
    store.arm("host", "br0", STEPS, 60, "x")
    dogs.alive_pids.clear()
    executed = []
    reports = store.recover("host", "discard", executed.append)
    assert executed == [] and reports[0]["action"] == "discarded" and files(store) == []


def test_recover_in_check_mode_changes_nothing(world):
    store, _clock, dogs = world
    store.arm("host", "br0", STEPS, 60, "x")
    dogs.alive_pids.clear()
    before = files(store)
    executed = []
    reports = store.recover("host", "restore", executed.append, check_mode=True)
    assert reports[0]["action"] == "would-restore" and executed == [] and files(store) == before


def test_recover_restores_a_half_fired_rollback(world):
    store, _clock, dogs = world
    armed = store.arm("host", "br0", STEPS, 60, "x")
    os.rename(armed.path, armed.path.replace(".armed.", ".firing."))  # watchdog died while restoring
    dogs.alive_pids.clear()
    executed = []
    reports = store.recover("host", "restore", lambda s: executed.append(s) or [])
    assert reports[0]["phase"] == "firing" and reports[0]["action"] == "restored" and executed == [STEPS]


def test_recover_reports_what_a_watchdog_did_after_an_aborted_run(world):
    store, _clock, dogs = world
    armed = store.arm("host", "br0", STEPS, 60, "x")
    dogs.fire(armed.path, results=[{"step": "s", "rc": 0}])
    dogs.alive_pids.clear()
    reports = store.recover("host", "restore", lambda s: pytest.fail("must not run again"))
    assert reports == [dict(ident=armed.ident, interface="br0", action="reported", status="rolled-back",
                            description="x", results=[{"step": "s", "rc": 0}])]
    assert files(store) == []


def test_recover_waits_for_a_live_watchdog(world):
    store, clock, dogs = world
    armed = store.arm("host", "br0", STEPS, 30, "x")
    original_sleep = store.sleep

    def sleep(seconds):
        original_sleep(seconds)
        if clock.now >= armed.state["deadline"] and os.path.exists(armed.path):
            dogs.fire(armed.path)
            dogs.alive_pids.clear()

    store.sleep = sleep
    start = clock.now
    reports = store.recover("host", "restore", lambda s: pytest.fail("the watchdog restores, not us"))
    assert reports[0]["action"] == "waited" and reports[0]["status"] == "rolled-back"
    assert clock.now - start >= 30
    assert files(store) == []


def test_recover_only_looks_at_its_scope(world):
    store, _clock, dogs = world
    store.arm("netns-other", "br0", STEPS, 60, "x")
    dogs.alive_pids.clear()
    assert store.recover("netns-lab", "restore", lambda s: pytest.fail("other scope")) == []


def test_default_verify_target_from_ssh_connection():
    assert safe.default_verify_target({"SSH_CONNECTION": "198.51.100.7 50022 192.0.2.10 22"}) == "198.51.100.7"
    assert safe.default_verify_target({}) is None


def test_probe_argv_in_a_namespace():
    argv = safe.probe_argv("tcp", "10.0.0.2", 22, 2.0, netns="lab", python="/usr/bin/python3")
    assert argv[:4] == ["ip", "netns", "exec", "lab"] and argv[4:6] == ["/usr/bin/python3", "-c"]
    assert argv[-3:] == ["10.0.0.2", "22", "2.0"]
    ping = safe.probe_argv("ping", "10.0.0.2", 22, 2.0, ping="/bin/ping")
    assert ping == ["/bin/ping", "-c", "1", "-W", "2", "10.0.0.2"]


def test_verify_retries_until_the_deadline():
    clock = FakeClock()
    answers = iter([(1, "", "unreachable"), (1, "", "unreachable"), (0, "", "")])
    ok, attempts, _err = safe.verify(lambda argv: next(answers), lambda: ["probe"], 10, clock=clock,
                                     sleep=clock.sleep)
    assert ok and attempts == 3
    ok, attempts, err = safe.verify(lambda argv: (1, "", "no route"), lambda: ["probe"], 5, clock=clock,
                                    sleep=clock.sleep)
    assert not ok and err == "no route" and attempts == 6


def test_tcp_probe_counts_a_refused_connection_as_an_answer():
    import socket
    import subprocess

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens: the kernel refuses, which proves the host is reachable
    rc = subprocess.run([sys.executable, "-c", safe.PROBE_SOURCE, "127.0.0.1", str(port), "2"], check=False).returncode
    assert rc == 0
    # an empty network namespace of its own (unshare -n): no route anywhere, no packet leaves
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", safe.PROBE_SOURCE, "10.253.99.1", "22", "0.5"],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 1 and "unreachable" in proc.stderr


def _wait(predicate, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_real_watchdog_fires_after_the_timeout_and_survives_its_parent(tmp_path):
    """The real detached process: it runs the restore steps at the deadline, writes done, removes armed."""
    marker = tmp_path / "restored"
    steps = [{"write": str(marker), "content": "old config\n", "mode": 0o600},
             {"argv": [sys.executable, "-c", "import sys; sys.exit(3)"]}]
    store = safe.RollbackStore(str(tmp_path / "state"))
    armed = store.arm("host", "br0", steps, 1.5, "real watchdog test")
    pid = store._pid(armed.ident)
    assert pid and safe.pid_alive(pid, armed.ident)
    assert os.getsid(pid) != os.getsid(0), "the watchdog runs in a session of its own"
    assert not marker.exists()
    assert _wait(lambda: os.path.exists(os.path.join(store.directory, armed.ident + ".done.json")), 10)
    assert marker.read_text() == "old config\n" and oct(marker.stat().st_mode & 0o777) == "0o600"
    assert not os.path.exists(armed.path)
    done = store.wait_done(armed.ident, timeout=5)
    assert done["status"] == "rolled-back" and [r["rc"] for r in done["results"]] == [0, 3]
    assert _wait(lambda: not safe.pid_alive(pid, armed.ident), 5)


def test_real_watchdog_disarmed_does_nothing(tmp_path):
    marker = tmp_path / "restored"
    store = safe.RollbackStore(str(tmp_path / "state"))
    armed = store.arm("host", "br0", [{"write": str(marker), "content": "x"}], 1.0, "disarm test")
    pid = store._pid(armed.ident)
    assert store.disarm(armed)
    assert _wait(lambda: not safe.pid_alive(pid, armed.ident), 5), "the watchdog exits once disarmed"
    time.sleep(1.2)
    assert not marker.exists()
    assert os.listdir(store.directory) == []


def test_real_watchdog_that_starts_after_the_module_gave_up_leaves_nothing(tmp_path):
    """On a loaded machine the watchdog can start after arm() gave up waiting and removed the armed state:
    it must then exit without leaving its pid file, which a later run would find as state of this scope."""
    state = tmp_path / "state"
    state.mkdir()
    path = state / "host--br0--1-1.armed.json"  # never written: the module already removed it
    proc = subprocess.run([sys.executable, "-c", safe.WATCHDOG_SOURCE, str(path)], timeout=30, check=False)
    assert proc.returncode == 0
    assert os.listdir(state) == []
