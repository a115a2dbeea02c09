"""main() of bridge, bond, vlan and host_info, with the kernel answered by a fake `ip`."""

import os
import sys

from ansible.module_utils import basic

from ansible_collections.virtforge.libvirt.plugins.module_utils import _host
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import safe
from ansible_collections.virtforge.libvirt.plugins.modules import bond, bridge, host_info, vlan
from module_main import main_outcome  # this directory is on sys.path for its tests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "module_utils", "hostnet"))
from hostnet_fakes import IpWorld, ip_link  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "module_utils", "fixtures")


def run(monkeypatch, module, check_mode=False, diff=False, commands=None, **args):
    world = IpWorld([ip_link("vfnbr0", "bridge", data=dict(stp_state=0, forward_delay=0, priority=32768)),
                     ip_link("vfnveth0", "veth", master="vfnbr0"), ip_link("vfnveth1", "veth")],
                    addrs={"vfnbr0": ["10.253.0.1/24"]}, netns="vft-net-unit")

    def run_command(self, argv, **kwargs):
        commands.append(list(argv)) if commands is not None else None
        return world(list(argv))

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return main_outcome(monkeypatch, module, args, check_mode=check_mode, diff=diff)


def test_bridge_check_mode_plans_without_changing(monkeypatch):
    commands = []
    out = run(monkeypatch, bridge, check_mode=True, diff=True, commands=commands, name="vfnbr0",
              netns="vft-net-unit", ports=["vfnveth0", "vfnveth1"], stp=False)
    assert not out["failed"] and out["changed"] and out["provider"] == "iproute2"
    assert out["commands"] == ["ip -n vft-net-unit link set dev vfnveth1 master vfnbr0",
                               "ip -n vft-net-unit link set dev vfnveth1 up"]
    assert "vfnveth0, vfnveth1" in out["diff"]["after"]
    assert all("show" in c for c in commands), "check mode only reads"
    assert safe.RollbackStore().entries("netns-vft-net-unit") == [], "check mode arms nothing"


def test_bridge_up_to_date(monkeypatch):
    out = run(monkeypatch, bridge, name="vfnbr0", netns="vft-net-unit", ports=["vfnveth0"],
              ip=dict(method="static", addresses=["10.253.0.1/24"]))
    assert not out["failed"] and not out["changed"] and out["changes"] == []


def test_bad_inputs_fail_through_fail_json_naming_the_option(monkeypatch):
    commands = []
    out = run(monkeypatch, bond, commands=commands, name="vfnbond0", netns="vft-net-unit", mode="8")
    assert out["failed"] and out["option"] == "mode" and out["msg"].startswith("mode: unknown bond mode")
    out = run(monkeypatch, vlan, commands=commands, name="vfnvlan", netns="vft-net-unit", id=4095, parent="vfnbr0")
    assert out["failed"] and out["option"] == "id"
    out = run(monkeypatch, vlan, commands=commands, name="vfnvlan", netns="vft-net-unit", id=5, parent="vfnnope")
    assert out["failed"] and out["option"] == "parent"
    assert all("show" in c or c[-1] == "lo" for c in commands)


def test_host_info_same_result_in_check_mode(monkeypatch):
    original = _host.gather
    tree = os.path.join(FIXTURES, "sysfs-intel-kvm")
    monkeypatch.setattr(_host, "gather", lambda _root, connect, uri: original(tree, connect, uri))
    out = run(monkeypatch, host_info, uri="test:///default")
    check = run(monkeypatch, host_info, check_mode=True, uri="test:///default")
    assert not out["failed"] and not out["changed"] and out["kvm_usable"] is True
    assert out["libvirt"]["reachable"] and out["libvirt"]["uri"] == "test:///default"
    for key in ("cpu", "kvm", "iommu", "numa", "hugepages", "memory", "network", "libvirt"):
        assert check[key] == out[key], key
