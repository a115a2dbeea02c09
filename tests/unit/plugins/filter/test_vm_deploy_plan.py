import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.virtforge.libvirt.plugins.filter.vm_deploy_plan import vm_deploy_plan, vm_deploy_report

DEFAULTS = dict(vcpus=1, memory="1GiB", clone_mode="linked", network="default")
PROFILES = dict(db=dict(vcpus=4, memory="8GiB", extra_disks=[dict(size="20GiB")], customize=dict(timezone="UTC")))


def plan(vms, **kw):
    kw.setdefault("defaults", DEFAULTS)
    kw.setdefault("profiles", PROFILES)
    kw.setdefault("golden_image", "/img/golden.qcow2")
    return vm_deploy_plan(vms, **kw)


def test_one_batch_per_step():
    out = plan([dict(name="web1"), dict(name="db1", profile="db", customize=dict(hostname="db")),
                dict(name="old", state="absent")], remove_storage=True)
    assert [c["name"] for c in out["clones"]] == ["web1.qcow2", "db1.qcow2"]
    assert out["clones"][0] == dict(name="web1.qcow2", pool="default", clone_from="/img/golden.qcow2", mode="linked")
    assert out["disks"] == [dict(name="db1-disk1.qcow2", pool="default", capacity="20GiB", format="qcow2")]
    custom = {c["volume"]: c for c in out["customizations"]}
    assert custom["web1.qcow2"]["hostname"] == "web1"
    assert custom["db1.qcow2"] == dict(hostname="db", timezone="UTC", pool="default", volume="db1.qcow2",
                                       machine_id_reset=True, ssh_host_keys_regenerate=True)
    doms = {d["name"]: d for d in out["domains"]}
    assert doms["db1"]["vcpus"] == 4 and doms["db1"]["memory"] == "8GiB"
    assert [d["volume"] for d in doms["db1"]["disks"]] == ["db1.qcow2", "db1-disk1.qcow2"]
    assert doms["web1"]["interfaces"] == [dict(network="default", model="virtio")]
    assert doms["web1"]["state"] == "running"
    assert doms["old"] == dict(name="old", state="absent", remove_storage=True)
    assert out["absent"] == ["old"] and out["golden_images"] == ["/img/golden.qcow2"]


def test_vm_settings_win_over_profile_and_defaults():
    out = plan([dict(name="db2", profile="db", vcpus=2, root_size="30GiB", golden_image="/img/other.qcow2")])
    assert out["domains"][0]["vcpus"] == 2
    assert out["clones"][0]["capacity"] == "30GiB" and out["clones"][0]["clone_from"] == "/img/other.qcow2"


@pytest.mark.parametrize("vms,fragment", [
    ([dict(vcpus=1)], "vm_deploy_vms[0]: every VM needs a name"),
    ([dict(name="a/b")], "vm_deploy_vms[0] (a/b).name"),
    ([dict(name="x"), dict(name="x")], "listed twice"),
    ([dict(name="x", profile="nope")], "vm_deploy_vms[0] (x).profile: unknown profile 'nope'"),
    ([dict(name="x", clone_mode="magic")], "clone_mode"),
    ([dict(name="x", state="exploded")], ".state"),
    ([dict(name="x", colour="red")], "unknown settings colour"),
    ([dict(name="x", extra_disks=[dict(bus="virtio")])], "extra_disks[0].size"),
    ("web1", "must be a list"),
])
def test_bad_input_names_the_setting(vms, fragment):
    with pytest.raises(AnsibleFilterError) as err:
        plan(vms)
    assert fragment in str(err.value)


def test_missing_golden_image():
    with pytest.raises(AnsibleFilterError, match="golden_image: no golden image"):
        plan([dict(name="x")], golden_image=None)


def test_report_table():
    lines = vm_deploy_report(
        [dict(name="web1", state="running", ip_addresses=[dict(address="10.0.0.5", source="lease")]),
         dict(name="web2", state="stopped"), dict(name="web3", state="running", ip_addresses=["10.0.0.7"])],
        [dict(name="web1.qcow2", backing="/img/golden.qcow2", exists=True)])
    assert lines[0].split() == ["NAME", "STATE", "IP", "DISK", "BACKING"]
    assert lines[1].split() == ["web1", "running", "10.0.0.5", "/img/golden.qcow2"]
    assert lines[2].split() == ["web2", "stopped", "-", "-"]
    assert lines[3].split() == ["web3", "running", "10.0.0.7", "-"]


def test_customize_false_skips_customization():
    out = plan([dict(name="a", customize=False), dict(name="b")])
    assert [c["volume"] for c in out["customizations"]] == ["b.qcow2"]
