"""Provider rendering against golden outputs: the same scenarios through iproute2, ifupdown and NetworkManager.

Each scenario is (desired options, current state). The golden file holds the apply steps and the rollback
steps (the snapshot applied back). Regenerate after a deliberate change with VF_UPDATE_GOLDEN=1 and review
the diff: these files are the contract of what each provider runs.
"""

import json
import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet import ifupdown, model, networkmanager
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet.iproute2 import Iproute2Provider
from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet.provider import (
    as_want,
    compare,
    predicted,
)
from hostnet_fakes import FakeRunner, IpRunner, IpWorld, ip_link, params

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
ABSENT = dict(exists=False, config={}, active=False)


def existing(kind, config, active=True):
    return dict(exists=True, kind=kind, config=config, active=active)


SCENARIOS = {
    "bridge-create": ("bridge", dict(
        name="br0", ports=["eth1", "eth0"], stp=False, forward_delay=0, priority=32768, vlan_filtering=True,
        mtu=9000, ip=dict(method="static", addresses=["192.0.2.10/24"], gateway="192.0.2.1", dns=["192.0.2.53"])),
        ABSENT),
    "bridge-update": ("bridge", dict(
        name="br0", ports=["eth0", "eth2"], stp=False, forward_delay=0,
        ip=dict(method="static", addresses=["192.0.2.20/24"], gateway="192.0.2.1")),
        existing("bridge", {"mtu": 1500, "stp": True, "forward_delay": 15, "priority": 32768,
                            "vlan_filtering": False, "ports": ["eth0", "eth1"], "ip.method": "static",
                            "ip.addresses": ["192.0.2.10/24"], "ip.gateway": "192.0.2.1", "ip.dns": []})),
    "bridge-absent": ("bridge", dict(name="br0", state="absent"),
                      existing("bridge", {"mtu": 1500, "stp": False, "ports": ["eth0"], "ip.method": "none",
                                          "ip.addresses": [], "ip.gateway": None})),
    "bond-active-backup": ("bond", dict(
        name="bond0", members=["eth0", "eth1"], mode="1", miimon=100, primary="eth0"), ABSENT),
    "bond-lacp": ("bond", dict(
        name="bond1", members=["ens1f0", "ens1f1"], mode="802.3ad", lacp_rate="fast", xmit_hash_policy="layer3+4",
        miimon=100, mtu=9000, ip=dict(method="none")), ABSENT),
    "bond-arp": ("bond", dict(
        name="bond2", members=["eth0", "eth1"], mode="active-backup", miimon=0, arp_interval=1000,
        arp_ip_target=["192.0.2.1", "192.0.2.2"]), ABSENT),
    "bond-mode-change": ("bond", dict(name="bond0", mode="balance-alb", members=["eth0", "eth1"]),
                         existing("bond", {"mtu": 1500, "mode": "active-backup", "miimon": 100,
                                           "members": ["eth0", "eth1"], "primary": "eth0", "ip.method": "none",
                                           "ip.addresses": [], "ip.gateway": None})),
    "vlan-create": ("vlan", dict(
        name="bond0.100", id=100, parent="bond0",
        ip=dict(method="static", addresses=["198.51.100.5/24", "2001:db8::5/64"], gateway="198.51.100.1")), ABSENT),
    "vlan-id-change": ("vlan", dict(name="vlan10", id=11, parent="br0"),
                       existing("vlan", {"mtu": 1500, "id": 10, "parent": "br0", "ip.method": "none",
                                         "ip.addresses": [], "ip.gateway": None})),
    "vlan-dhcp": ("vlan", dict(name="vlan20", id=20, parent="eth0", ip=dict(method="dhcp", dns=["192.0.2.53"])),
                  ABSENT),
}

# what each provider cannot do (validated before rendering)
UNSUPPORTED = {("iproute2", "vlan-dhcp"), ("iproute2", "bridge-create")}


def providers():
    return {
        "iproute2": Iproute2Provider(FakeRunner(), netns=None),
        "iproute2-netns": Iproute2Provider(FakeRunner(), netns="lab"),
        "ifupdown": ifupdown.IfupdownProvider(FakeRunner(), root="/", flavor="ifupdown"),
        "ifupdown2": ifupdown.IfupdownProvider(FakeRunner(), root="/", flavor="ifupdown2"),
        "networkmanager": networkmanager.NetworkManagerProvider(FakeRunner()),
    }


def render(provider_key, scenario):
    kind, args, current = SCENARIOS[scenario]
    provider = providers()[provider_key]
    current = dict(current, kind=current.get("kind", kind), connections=[])
    want = model.desired(kind, params(kind, **args), provider.name)
    changes = compare(want, current)
    steps = provider.apply_steps(want, current, changes)
    after = predicted(want, current)
    back = compare(as_want(want["name"], kind, current), after)
    restore = provider.apply_steps(as_want(want["name"], kind, current), dict(after, connections=[]), back)
    return dict(changes=[c.to_dict() for c in changes], apply=steps, rollback=restore)


CASES = [(p, s) for p in providers() for s in SCENARIOS if (p.split("-")[0], s) not in UNSUPPORTED]


@pytest.mark.parametrize("provider_key,scenario", CASES, ids=["%s/%s" % c for c in CASES])
def test_golden(provider_key, scenario):
    got = render(provider_key, scenario)
    path = os.path.join(GOLDEN, provider_key, scenario + ".json")
    text = json.dumps(got, indent=2, sort_keys=True) + "\n"
    if os.environ.get("VF_UPDATE_GOLDEN"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
    with open(path) as handle:
        assert text == handle.read(), "rendering changed; review and regenerate with VF_UPDATE_GOLDEN=1"


def test_golden_files_exist_for_every_case():
    for provider_key, scenario in CASES:
        assert os.path.exists(os.path.join(GOLDEN, provider_key, scenario + ".json")), (provider_key, scenario)


def test_iproute2_dhcp_and_dns_are_refused_before_rendering():
    for scenario in ("vlan-dhcp", "bridge-create"):
        kind, args, _current = SCENARIOS[scenario]
        with pytest.raises(Exception) as info:
            model.desired(kind, params(kind, **args), "iproute2")
        assert info.value.option in ("ip.method", "ip.dns")


def test_iproute2_reads_the_kernel_model():
    world = IpWorld([
        ip_link("br0", "bridge", data=dict(stp_state=0, forward_delay=1500, priority=32768, vlan_filtering=1)),
        ip_link("eth0", "veth", master="br0"), ip_link("eth1", "veth", master="br0"),
        ip_link("bond0", "bond", data=dict(mode="active-backup", miimon=100, arp_interval=0, ad_lacp_rate="slow",
                                           xmit_hash_policy="layer2", primary="eth2")),
        ip_link("eth2", "veth", master="bond0"),
        ip_link("vlan5", "vlan", data=dict(id=5), link="bond0"),
    ], addrs={"br0": ["192.0.2.10/24"]}, routes={"br0": "192.0.2.1"}, netns="lab")
    provider = Iproute2Provider(IpRunner(world), netns="lab")
    br = provider.read("br0", "bridge")
    assert br["exists"] and br["active"] and br["kind"] == "bridge"
    assert br["config"] == {"mtu": 1500, "stp": False, "forward_delay": 15, "priority": 32768, "vlan_filtering": True,
                            "ports": ["eth0", "eth1"], "ip.addresses": ["192.0.2.10/24"], "ip.method": "static",
                            "ip.gateway": "192.0.2.1"}
    bond = provider.read("bond0", "bond")
    assert bond["config"]["mode"] == "active-backup" and bond["config"]["members"] == ["eth2"]
    assert bond["config"]["primary"] == "eth2" and bond["config"]["lacp_rate"] == "slow"
    vlan = provider.read("vlan5", "vlan")
    assert vlan["config"]["id"] == 5 and vlan["config"]["parent"] == "bond0"
    assert provider.read("nope", "bridge") == dict(exists=False, kind="bridge", config={}, active=False)
    assert provider.master_of("eth2") == ("bond0", "bond")
    assert provider.master_of("br0") == (None, None)
    # every command ran in the namespace
    assert all(call[:3] == ["ip", "-n", "lab"] for call in provider.runner.calls)


def test_iproute2_read_then_compare_is_idempotent():
    world = IpWorld([ip_link("br0", "bridge", data=dict(stp_state=0, forward_delay=0, priority=32768)),
                     ip_link("eth0", "veth", master="br0")], addrs={"br0": ["192.0.2.10/24"]})
    provider = Iproute2Provider(IpRunner(world))
    want = model.desired("bridge", params("bridge", name="br0", ports=["eth0"], forward_delay=0,
                                          ip=dict(method="static", addresses=["192.0.2.10/24"])), "iproute2")
    assert compare(want, provider.read("br0", "bridge")) == []


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if SCENARIOS[s][1].get("state") != "absent"])
def test_ifupdown_file_round_trip(scenario):
    kind, args, current = SCENARIOS[scenario]
    want = model.desired(kind, params(kind, **args), "ifupdown")
    cfg = predicted(want, current)["config"]
    text = ifupdown.render(want["name"], kind, cfg)
    parsed_kind, parsed_name, parsed = ifupdown.parse(text)
    assert (parsed_kind, parsed_name) == (kind, want["name"])
    for key, value in want["config"].items():
        assert parsed.get(key) == value, key
    assert compare(want, dict(exists=True, kind=kind, config=parsed, active=True)) == []


def test_ifupdown_ignores_files_it_does_not_own():
    assert ifupdown.parse("auto eth0\niface eth0 inet dhcp\n") is None


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if SCENARIOS[s][1].get("state") != "absent"])
def test_networkmanager_properties_round_trip(scenario):
    kind, args, current = SCENARIOS[scenario]
    want = model.desired(kind, params(kind, **args), "networkmanager")
    cfg = predicted(want, current)["config"]
    values = dict(networkmanager.properties(kind, cfg))
    parsed = networkmanager.parse_properties(kind, values)
    for key, value in want["config"].items():
        if key in ("ports", "members"):
            continue  # ports are connections of their own
        assert parsed.get(key) == value, key


def test_networkmanager_reads_profiles_and_ports():
    show = {
        ("nmcli", "-t", "-f", ",".join(networkmanager._READ_PROPS), "connection", "show", "br0"): (0, "\n".join([
            "connection.type:bridge", "802-3-ethernet.mtu:auto", "bridge.stp:no", "bridge.forward-delay:0",
            "bridge.priority:32768", "bridge.vlan-filtering:no", "ipv4.method:manual",
            "ipv4.addresses:192.0.2.10/24", "ipv4.gateway:192.0.2.1", "ipv4.dns:", "ipv6.method:disabled",
            "ipv6.addresses:", "ipv6.gateway:"]), ""),
        ("nmcli", "-t", "-f", "NAME", "connection", "show"): (0, "br0\nbr0-port-eth0\nbond0\nWired\n", ""),
        ("nmcli", "-t", "-f", "connection.master", "connection", "show", "bond0"): (0, "connection.master:br0\n", ""),
        ("nmcli", "-t", "-f", "connection.master", "connection", "show", "Wired"): (0, "connection.master:\n", ""),
        ("nmcli", "-t", "-f", "GENERAL.STATE", "connection", "show", "br0"): (0, "GENERAL.STATE:activated\n", ""),
    }
    provider = networkmanager.NetworkManagerProvider(FakeRunner(show, default=(10, "", "no such connection")))
    state = provider.read("br0", "bridge")
    assert state["exists"] and state["active"]
    assert state["config"]["ports"] == ["bond0", "eth0"]
    assert state["config"]["stp"] is False and state["config"]["ip.addresses"] == ["192.0.2.10/24"]
    want = model.desired("bridge", params("bridge", name="br0", ports=["eth0", "bond0"], forward_delay=0,
                                          ip=dict(method="static", addresses=["192.0.2.10/24"],
                                                  gateway="192.0.2.1")), "networkmanager")
    assert compare(want, state) == []
    assert provider.read("missing", "bridge")["exists"] is False


def _etc(tmp_path, interfaces, extra=None):
    net = tmp_path / "etc" / "network"
    (net / "interfaces.d").mkdir(parents=True)
    (net / "interfaces").write_text(interfaces)
    for name, text in (extra or {}).items():
        (net / "interfaces.d" / name).write_text(text)
    return ifupdown.IfupdownProvider(IpRunner(IpWorld([ip_link("br0", "bridge")])), root=str(tmp_path),
                                     flavor="ifupdown2")


DEBIAN = "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nallow-hotplug eno1\n" \
         "iface eno1 inet dhcp\n"


def test_ifupdown_refuses_what_it_does_not_own(tmp_path):
    provider = _etc(tmp_path, DEBIAN, {"uplink": "auto eno2\niface eno2 inet manual\n"})
    assert ifupdown.IfupdownProvider.detect(None, str(tmp_path))
    want = model.desired("bridge", params("bridge", name="br0", ports=["eno3"]), "ifupdown")
    provider.check_system(want, provider.read("br0", "bridge"))  # eno3 is free: fine
    for ports, option, where in ((["eno3", "eno1"], "ports[1]", "interfaces"), (["eno2"], "ports[0]", "uplink")):
        want = model.desired("bridge", params("bridge", name="br0", ports=ports), "ifupdown")
        with pytest.raises(Exception) as info:
            provider.check_system(want, provider.read("br0", "bridge"))
        assert info.value.option == option and where in info.value.message
    want = model.desired("bridge", params("bridge", name="eno1"), "ifupdown")
    with pytest.raises(Exception) as info:
        provider.check_system(want, provider.read("eno1", "bridge"))
    assert info.value.option == "name"


def test_ifupdown_needs_interfaces_d_sourced(tmp_path):
    provider = _etc(tmp_path, "auto lo\niface lo inet loopback\n")
    want = model.desired("bridge", params("bridge", name="br0"), "ifupdown")
    with pytest.raises(Exception) as info:
        provider.check_system(want, provider.read("br0", "bridge"))
    assert info.value.option == "provider" and "source /etc/network/interfaces.d/*" in info.value.message


def test_ifupdown_reads_its_own_file_and_applies_atomically(tmp_path):
    from ansible_collections.virtforge.libvirt.plugins.module_utils._hostnet.provider import run_steps

    provider = _etc(tmp_path, DEBIAN)
    want = model.desired("bridge", params("bridge", name="br0", ports=["eno3"], forward_delay=0,
                                          ip=dict(method="static", addresses=["192.0.2.10/24"])), "ifupdown")
    current = provider.read("br0", "bridge")
    assert current["exists"] is False
    steps = provider.apply_steps(want, current, compare(want, current))
    assert steps[-1] == {"argv": ["ifreload", "-a"]}
    results = run_steps(provider.runner, steps)
    assert [r["rc"] for r in results] == [0, 0]
    path = tmp_path / "etc" / "network" / "interfaces.d" / "virtforge-br0"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert sorted(os.listdir(path.parent)) == ["virtforge-br0"], "no temporary file left"
    again = provider.read("br0", "bridge")
    assert again["exists"] and again["active"] and compare(want, again) == [], "a second run changes nothing"
    # removal takes the file away
    gone = model.desired("bridge", params("bridge", name="br0", state="absent"), "ifupdown")
    run_steps(provider.runner, provider.apply_steps(gone, again, compare(gone, again)))
    assert not path.exists()


def test_networkmanager_bridge_on_a_bond_profile_modifies_the_bond():
    """A port that is one of our own profiles (a bond) is pointed at the bridge, not given a port profile."""
    provider = networkmanager.NetworkManagerProvider(FakeRunner())
    want = model.desired("bridge", params("bridge", name="br0", ports=["bond0", "eno3"]), "networkmanager")
    current = dict(exists=False, kind="bridge", config={}, active=False, connections=["bond0", "Wired 1"])
    steps = provider.apply_steps(want, current, compare(want, current))
    argvs = [s["argv"] for s in steps]
    assert ["nmcli", "connection", "modify", "bond0", "connection.master", "br0", "connection.slave-type",
            "bridge"] in argvs
    assert ["nmcli", "connection", "add", "type", "ethernet", "con-name", "br0-port-eno3", "ifname", "eno3",
            "connection.master", "br0", "connection.slave-type", "bridge", "connection.autoconnect", "yes"] in argvs
    assert argvs[0][:4] == ["nmcli", "connection", "add", "type"]
    # the controller brings its ports up with it
    assert argvs[0][argvs[0].index("connection.autoconnect-slaves") + 1] == "yes"
    assert argvs[-1] == ["nmcli", "connection", "up", "br0"]
    # releasing the bond again clears its controller
    after = predicted(want, current)
    back = compare(as_want("br0", "bridge", current), after)
    restore = provider.apply_steps(as_want("br0", "bridge", current), dict(after, connections=["bond0"]), back)
    # and gives it no IP configuration (NetworkManager's defaults would be DHCP)
    assert ["nmcli", "connection", "modify", "bond0", "connection.master", "", "connection.slave-type", "",
            "ipv4.method", "disabled", "ipv6.method", "disabled"] in [s["argv"] for s in restore]
    assert restore[-1]["argv"] == ["nmcli", "connection", "delete", "br0"]


def _nm_root(tmp_path, dispatcher=True, hook=True, hook_mode=0o755):
    for present, rel, mode in ((dispatcher, "etc/NetworkManager/dispatcher.d/01-ifupdown", 0o755),
                               (hook, "etc/network/if-post-down.d/ifenslave", hook_mode)):
        if present:
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\n")
            path.chmod(mode)
    return networkmanager.NetworkManagerProvider(FakeRunner(), root=str(tmp_path))


def test_networkmanager_refuses_bonds_where_ifenslaves_hook_runs_from_the_dispatcher(tmp_path):
    """Debian: 01-ifupdown runs ifenslave's post-down hook for NetworkManager's bonds; the ports would flap."""
    provider = _nm_root(tmp_path)
    want = model.desired("bond", params("bond", name="bond0", members=["eth0", "eth1"], mode="active-backup"),
                         "networkmanager")
    with pytest.raises(VirtforgeError) as err:
        provider.check_system(want, ABSENT)
    assert err.value.option == "provider"
    assert "if-post-down.d/ifenslave" in err.value.msg and "apt-get purge ifenslave" in err.value.fix
    # removing a bond, and bridges or VLANs, are not affected by the hook
    provider.check_system(model.desired("bond", params("bond", name="bond0", state="absent"), "networkmanager"),
                          existing("bond", {}))
    provider.check_system(model.desired("bridge", params("bridge", name="br0", ports=["eth2"]), "networkmanager"),
                          ABSENT)


@pytest.mark.parametrize("dispatcher,hook,hook_mode",
                         [(False, True, 0o755), (True, False, 0o755), (True, True, 0o644)])
def test_networkmanager_bonds_are_fine_without_the_hook_or_the_dispatcher(tmp_path, dispatcher, hook, hook_mode):
    provider = _nm_root(tmp_path, dispatcher, hook, hook_mode)
    want = model.desired("bond", params("bond", name="bond0", members=["eth0", "eth1"]), "networkmanager")
    provider.check_system(want, ABSENT)
