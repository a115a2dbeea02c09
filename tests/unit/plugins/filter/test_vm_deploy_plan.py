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
    ([dict(name="x", extra_disks=[dict(size="1G", paths=2, bus="virtio")])], "extra_disks[0].bus"),
    ([dict(name="x", extra_disks=[dict(size="1G", paths=2, format="qcow2")])], "extra_disks[0].format"),
    ([dict(name="x", extra_disks=[dict(size="1G", paths=2, dev="sdb")])], "extra_disks[0].dev"),
    ([dict(name="x", extra_disks=[dict(size="1G", paths=2, shareable=False)])], "extra_disks[0].shareable"),
    ([dict(name="x", extra_disks=[dict(size="1G", paths=0)])], "extra_disks[0].paths"),
    ([dict(name="x", extra_disks=[dict(size="1G", paths=True)])], "extra_disks[0].paths"),
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


IO_PROFILES = {
    "db-tier": dict(
        interfaces=[dict(network="storage", bandwidth=dict(outbound=dict(average=125000)))],
        extra_disks=[dict(size="50GiB", bus="scsi", cache="none", io="native",
                          iotune=dict(total_iops_sec=2000))],
        hostdevs=[dict(pci="0000:81:00.1")],
        root_iotune=dict(total_bytes_sec=104857600),
    ),
}


def test_io_profile_devices_come_first_and_defined_vms_skip_the_iommu_check():
    out = plan([dict(name="db1", io_profile="db-tier", state="present", network=None,
                     interfaces=[dict(network="default")], extra_disks=[dict(size="1GiB")]),
                dict(name="db2", io_profile="db-tier", hostdevs=[dict(usb=dict(vendor="0x1050", product="0x0407"))])],
               io_profiles=IO_PROFILES)
    doms = {d["name"]: d for d in out["domains"]}
    db1 = doms["db1"]
    assert [i["network"] for i in db1["interfaces"]] == ["storage", "default"]
    assert db1["interfaces"][0]["bandwidth"] == dict(outbound=dict(average=125000))
    assert db1["disks"][0]["iotune"] == dict(total_bytes_sec=104857600)
    assert db1["disks"][1] == dict(pool="default", volume="db1-disk1.qcow2", bus="scsi", format="qcow2",
                                   cache="none", io="native", iotune=dict(total_iops_sec=2000))
    assert db1["disks"][2]["volume"] == "db1-disk2.qcow2"
    assert db1["hostdevs"] == [dict(pci="0000:81:00.1", iommu_check=False)]  # defined before the hardware exists
    db2 = doms["db2"]
    assert db2["hostdevs"] == [dict(pci="0000:81:00.1"), dict(usb=dict(vendor="0x1050", product="0x0407"))]
    assert [d["name"] for d in out["disks"]] == ["db1-disk1.qcow2", "db1-disk2.qcow2", "db2-disk1.qcow2"]
    # the profile's template is not changed by a VM
    assert IO_PROFILES["db-tier"]["hostdevs"] == [dict(pci="0000:81:00.1")]


def test_io_profile_with_tuning_from_a_profile():
    batch = dict(cputune=dict(shares=4096), memtune=dict(soft_limit="1G"))
    out = plan([dict(name="b1", profile="batch")], profiles=dict(batch=batch))
    assert out["domains"][0]["cputune"] == dict(shares=4096) and out["domains"][0]["memtune"]["soft_limit"] == "1G"


@pytest.mark.parametrize("vms, io_profiles, fragment", [
    ([dict(name="x", io_profile="gold")], IO_PROFILES, "vm_deploy_vms[0] (x).io_profile: unknown I/O profile 'gold'"),
    ([dict(name="x", io_profile="bad")], dict(bad=dict(vcpus=2)), "vm_deploy_io_profiles.bad: unknown settings vcpus"),
    ([dict(name="x", io_profile="bad")], dict(bad=dict(interfaces="eth0")), "vm_deploy_io_profiles.bad.interfaces"),
    ([dict(name="x", io_profile="bad")], dict(bad=[1]), "vm_deploy_io_profiles.bad: must be a dict"),
    ([dict(name="x", extra_disks=[dict(size="1G", colour="red")])], {}, "extra_disks[0]: unknown settings colour"),
])
def test_bad_io_profile(vms, io_profiles, fragment):
    with pytest.raises(AnsibleFilterError) as err:
        plan(vms, io_profiles=io_profiles)
    assert fragment in str(err.value)


def test_a_disk_with_two_paths_is_one_raw_volume_seen_twice_with_one_wwn():
    out = plan([dict(name="mp1", extra_disks=[dict(size="64MiB", paths=2, cache="none"), dict(size="1GiB")])])
    assert out["disks"] == [dict(name="mp1-disk1.raw", pool="default", capacity="64MiB", format="raw"),
                            dict(name="mp1-disk2.qcow2", pool="default", capacity="1GiB", format="qcow2")]
    disks = out["domains"][0]["disks"]
    assert len(disks) == 4
    first, second = disks[1], disks[2]
    assert first == second and first["volume"] == "mp1-disk1.raw" and "dev" not in first
    assert first["bus"] == "scsi" and first["format"] == "raw" and first["shareable"] is True
    assert first["cache"] == "none" and len(first["wwn"]) == 16 and first["wwn"].startswith("5")
    assert disks[3]["bus"] == "virtio" and "wwn" not in disks[3]
    # SCSI disks get a virtio-scsi controller unless the VM names its own
    assert out["domains"][0]["controllers"] == [dict(type="scsi", model="virtio-scsi")]
    lsi = plan([dict(name="mp1", controllers=[dict(type="scsi", model="lsilogic")],
                     extra_disks=[dict(size="64MiB", paths=2)])])
    assert lsi["domains"][0]["controllers"] == [dict(type="scsi", model="lsilogic")]
    assert "controllers" not in plan([dict(name="web1")])["domains"][0]
    # the WWN is stable from run to run, and the user's own wins
    again = plan([dict(name="mp1", extra_disks=[dict(size="64MiB", paths=2, cache="none")])])
    assert again["domains"][0]["disks"][1]["wwn"] == first["wwn"]
    own = plan([dict(name="mp1", extra_disks=[dict(size="64MiB", paths=3, wwn="5000c50015ea71ac")])])
    assert [d.get("wwn") for d in own["domains"][0]["disks"]] == [None] + ["5000c50015ea71ac"] * 3


def test_every_option_that_describes_the_domain_reaches_the_domain_module():
    extra = dict(graphics_listen="127.0.0.1", balloon=dict(stats_period=5), tpm={}, machine="q35",
                 iommu=dict(model="intel", caching_mode=True), rngs=[dict(rate_bytes=1024)],
                 watchdogs=[dict(model="i6300esb")])
    domain = plan([dict(name="v1", **extra)])["domains"][0]
    assert {k: domain[k] for k in extra} == extra
