"""One module run end to end on fakes: plan, check mode, arm, apply, verify, disarm or roll back."""

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet.manager import HostNetManager
from hostnet_fakes import FakeModule, IpRunner, IpWorld, ip_link, params
from test_hostnet_safe import FakeClock, FakeWatchdogs
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import safe


class ProbeRunner(IpRunner):
    """ip answered by the world; the connectivity probe by ``reachable`` (a list consumed per probe)."""

    def __init__(self, world, reachable, fail_on=None):
        super().__init__(world)
        self.reachable = list(reachable)
        self.fail_on = fail_on
        self.probes = 0

    def run(self, argv, check=True, **kw):
        argv = [str(a) for a in argv]
        if "-c" in argv and "socket" in argv[argv.index("-c") + 1]:
            self.probes += 1
            self.calls.append(["probe", argv[-3]])
            ok = self.reachable.pop(0) if len(self.reachable) > 1 else self.reachable[0]
            return (0, "", "") if ok else (1, "", "[Errno 101] Network is unreachable")
        if self.fail_on and self.fail_on in " ".join(argv):
            self.calls.append(argv)
            return 2, "", "RTNETLINK answers: Operation not supported"
        return super().run(argv, check=check, **kw)


def world():
    return IpWorld([ip_link("br0", "bridge", data=dict(stp_state=0, forward_delay=0, priority=32768)),
                    ip_link("eth0", "veth", master="br0"), ip_link("eth1", "veth"),
                    ip_link("eth2", "veth", master="bond9"), ip_link("bond9", "bond", data=dict(mode="balance-rr"))],
                   addrs={"br0": ["10.253.0.1/24"]}, netns="lab")


def make(tmp_path, reachable=(True,), fail_on=None, check_mode=False, environ=None, **args):
    clock = FakeClock()
    dogs = FakeWatchdogs()
    store = safe.RollbackStore(str(tmp_path), clock=clock, sleep=clock.sleep, alive=dogs.alive, spawn=dogs.spawn)
    base = dict(name="br0", netns="lab", ports=["eth0"], forward_delay=0,
                ip=dict(method="static", addresses=["10.253.0.1/24"]), verify_target="10.253.0.2")
    base.update(args)
    module = FakeModule(params("bridge", **base), check_mode=check_mode, diff=True)
    runner = ProbeRunner(world(), reachable, fail_on=fail_on)
    manager = HostNetManager(module, "bridge", store=store, runner=runner, environ=environ or {}, clock=clock,
                             sleep=clock.sleep)
    return manager, runner, store, dogs


def changing_calls(runner):
    return [c for c in runner.calls if c[0] == "ip" and not any(w in c for w in ("-j", "show"))]


def test_up_to_date_changes_nothing_and_arms_nothing(tmp_path):
    manager, runner, _store, dogs = make(tmp_path)
    result = manager.run()
    assert result["changed"] is False and result["changes"] == [] and result["commands"] == []
    assert changing_calls(runner) == [] and dogs.started == []


def test_check_mode_plans_and_stops(tmp_path):
    manager, runner, _store, dogs = make(tmp_path, check_mode=True, ip=dict(method="static",
                                                                            addresses=["10.253.0.9/24"]))
    result = manager.run()
    assert result["changed"] is True
    assert [c["path"] for c in result["changes"]] == ["ip.addresses"]
    assert result["commands"] == ["ip -n lab addr add 10.253.0.9/24 dev br0",
                                  "ip -n lab addr del 10.253.0.1/24 dev br0"]
    assert "10.253.0.9/24" in result["diff"]["after"] and "10.253.0.1/24" in result["diff"]["before"]
    assert changing_calls(runner) == [] and dogs.started == [] and runner.probes == 0


def test_verified_change_is_disarmed(tmp_path):
    manager, runner, store, dogs = make(tmp_path, ports=["eth0", "eth1"])
    result = manager.run()
    assert result["changed"] and result["rollback"]["status"] == "disarmed"
    assert result["verify"]["result"] == "ok" and result["verify"]["target"] == "10.253.0.2"
    assert changing_calls(runner) == [["ip", "-n", "lab", "link", "set", "dev", "eth1", "master", "br0"],
                                      ["ip", "-n", "lab", "link", "set", "dev", "eth1", "up"]]
    assert result["rollback_commands"] == ["ip -n lab link set dev eth1 nomaster"]
    # armed before the first change, disarmed after verification
    assert len(dogs.started) == 1 and store.entries("netns-lab") == []


def test_lost_connectivity_rolls_back_at_once(tmp_path):
    manager, runner, store, _dogs = make(tmp_path, reachable=(True, False),
                                         ip=dict(method="static", addresses=["10.253.1.1/24"]))
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    msg = info.value.message
    assert "10.253.0.2 is not reachable after the change" in msg
    assert "rolled back to the previous configuration of bridge br0" in msg
    assert "ip -n lab addr add 10.253.0.1/24 dev br0" in msg
    assert info.value.details["rollback"]["status"] == "rolled-back"
    calls = changing_calls(runner)
    assert calls[-2:] == [["ip", "-n", "lab", "addr", "add", "10.253.0.1/24", "dev", "br0"],
                          ["ip", "-n", "lab", "addr", "del", "10.253.1.1/24", "dev", "br0"]]
    assert store.entries("netns-lab") == []


def test_failed_apply_rolls_back_what_was_done(tmp_path):
    manager, runner, _store, _dogs = make(tmp_path, ports=["eth0", "eth1"], fail_on="eth1 up")
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    assert "applying failed" in info.value.message and "Operation not supported" in info.value.message
    assert changing_calls(runner)[-1] == ["ip", "-n", "lab", "link", "set", "dev", "eth1", "nomaster"]


def test_watchdog_fired_first_is_reported(tmp_path):
    manager, runner, store, dogs = make(tmp_path, ports=["eth0", "eth1"])
    original = runner.run

    def slow(argv, check=True, **kw):  # the watchdog fires while the module verifies
        if "-c" in argv:
            for ident, phase in store.entries("netns-lab"):
                if phase == "armed":
                    dogs.fire(store._base(ident) + ".armed.json")
        return original(argv, check=check, **kw)

    runner.run = slow
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    assert info.value.option == "rollback_timeout" and "watchdog rolled it back" in info.value.message


def test_enslaved_member_is_refused_before_anything(tmp_path):
    manager, runner, _store, dogs = make(tmp_path, ports=["eth0", "eth2"])
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    assert info.value.option == "ports[1]" and "already enslaved to bond bond9" in info.value.message
    assert changing_calls(runner) == [] and dogs.started == []


def test_bond_member_enslaved_to_another_bond(tmp_path):
    clock = FakeClock()
    dogs = FakeWatchdogs()
    store = safe.RollbackStore(str(tmp_path), clock=clock, sleep=clock.sleep, alive=dogs.alive, spawn=dogs.spawn)
    module = FakeModule(params("bond", name="bond0", netns="lab", mode="active-backup", members=["eth1", "eth2"]))
    runner = ProbeRunner(world(), (True,))
    with pytest.raises(VirtforgeError) as info:
        HostNetManager(module, "bond", store=store, runner=runner, environ={}).run()
    assert info.value.option == "members[1]" and "eth2 is already enslaved to bond bond9" in info.value.message
    assert changing_calls(runner) == [] and dogs.started == []


def test_existing_interface_of_another_kind(tmp_path):
    manager, runner, _store, _dogs = make(tmp_path, name="eth1", ports=[])
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    assert info.value.option == "name" and "is a veth, not a bridge" in info.value.message


def test_default_target_is_the_controller_and_missing_target_is_reported(tmp_path):
    manager, _runner, _store, _dogs = make(tmp_path, verify_target=None, ports=["eth0", "eth1"],
                                           environ={"SSH_CONNECTION": "10.253.0.7 40000 10.253.0.1 22"})
    assert manager.run()["verify"]["target"] == "10.253.0.7"
    manager, _runner, _store, _dogs = make(tmp_path, verify_target=None, ports=["eth0", "eth1"])
    result = manager.run()
    assert result["verify"]["result"] == "skipped" and "SSH_CONNECTION" in result["verify"]["reason"]
    assert result["rollback"]["status"] == "disarmed"


def test_stale_rollback_is_restored_and_reported_before_the_run(tmp_path):
    manager, runner, store, dogs = make(tmp_path)
    armed = store.arm("netns-lab", "br0", [{"argv": ["ip", "-n", "lab", "link", "set", "dev", "br0", "mtu", "1500"]}],
                      60, "aborted run")
    dogs.alive_pids.clear()
    result = manager.run()
    assert result["stale_rollbacks"][0]["action"] == "restored"
    assert result["changed"] is True and result["changes"] == []  # the restore changed the system
    assert ["ip", "-n", "lab", "link", "set", "dev", "br0", "mtu", "1500"] in runner.calls
    assert manager.module.warnings and not store.take(armed)


def test_planned_port_is_accepted_in_check_mode_only(tmp_path):
    # check mode: bond0 is made by an earlier task of the same run, so the plan uses it
    manager, runner, _store, dogs = make(tmp_path, check_mode=True, ports=["eth0", "bond0"],
                                         planned_interfaces=["bond0"])
    result = manager.run()
    assert result["changed"] is True and "ip -n lab link set dev bond0 master br0" in result["commands"]
    assert changing_calls(runner) == [] and dogs.started == []
    # not planned: refused in check mode too
    manager, runner, _store, _dogs = make(tmp_path, check_mode=True, ports=["eth0", "bond7"],
                                          planned_interfaces=["bond0"])
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    assert info.value.option == "ports[1]" and "there is no interface bond7" in info.value.message
    # a real run: it must exist, planned or not
    manager, runner, _store, dogs = make(tmp_path, ports=["eth0", "bond0"], planned_interfaces=["bond0"])
    with pytest.raises(VirtforgeError) as info:
        manager.run()
    assert info.value.option == "ports[1]" and changing_calls(runner) == [] and dogs.started == []


def test_planned_vlan_parent_in_check_mode(tmp_path):
    clock = FakeClock()
    dogs = FakeWatchdogs()
    store = safe.RollbackStore(str(tmp_path), clock=clock, sleep=clock.sleep, alive=dogs.alive, spawn=dogs.spawn)
    for check_mode, planned, ok in ((True, ["br9"], True), (True, [], False), (False, ["br9"], False)):
        module = FakeModule(params("vlan", name="br9.20", netns="lab", id=20, parent="br9", verify=False,
                                   planned_interfaces=planned), check_mode=check_mode)
        runner = ProbeRunner(world(), (True,))
        manager = HostNetManager(module, "vlan", store=store, runner=runner, environ={})
        if ok:
            assert manager.run()["changed"] is True
        else:
            with pytest.raises(VirtforgeError) as info:
                manager.run()
            assert info.value.option == "parent" and "there is no interface br9 to carry VLAN 20" in info.value.message
        assert changing_calls(runner) == [] and dogs.started == []
