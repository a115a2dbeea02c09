"""volume, pool and network main() through AnsibleModule, against test:///default and temp files."""

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import connect
from ansible_collections.virtforge.libvirt.plugins.modules import network, pool, volume
from module_main import main_outcome  # this directory is on sys.path for its tests


@pytest.fixture(autouse=True)
def keep_test_driver():
    """test:///default keeps its state only while a connection is open: hold one for the test."""
    conn = connect("test:///default")
    yield conn
    conn.close()


def run(monkeypatch, module, check_mode=False, **args):
    args.setdefault("uri", "test:///default")
    return main_outcome(monkeypatch, module, args, check_mode=check_mode, diff=True)


def test_volume_main_create_check_then_real(monkeypatch, tmp_path):
    args = dict(directory=str(tmp_path), name="vft-sto-m.qcow2", capacity="2M")
    res = run(monkeypatch, volume, check_mode=True, **args)
    assert res["changed"] and not res["failed"] and os.listdir(tmp_path) == []
    assert res["diff"]["after"]["capacity"] == 2 * 1024 * 1024
    res = run(monkeypatch, volume, **args)
    assert res["changed"] and res["format"] == "qcow2" and res["pool"] is None
    res = run(monkeypatch, volume, **args)
    assert not res["changed"]


def test_volume_main_fails_naming_the_option(monkeypatch, tmp_path):
    res = run(monkeypatch, volume, directory=str(tmp_path), name="../x", capacity="1M")
    assert res["failed"] and res["option"] == "name" and res["msg"].startswith("name:")
    res = run(monkeypatch, volume, pool="vft-sto-nosuchpool", name="x", capacity="1M")
    assert res["failed"] and res["option"] == "pool"
    res = run(monkeypatch, volume, directory=str(tmp_path), name="x", capacity="lots")
    assert res["failed"] and res["option"] == "capacity"
    res = run(monkeypatch, volume, directory=str(tmp_path), name="x", pool="default-pool", capacity="1M")
    assert res["failed"] and "mutually exclusive" in res["msg"]
    assert os.listdir(tmp_path) == []


def test_volume_main_refuses_non_file_pools(monkeypatch):
    # the test driver's default pool is of type dir but its target does not exist on this machine
    res = run(monkeypatch, volume, pool="default-pool", name="x.qcow2", capacity="1M")
    assert res["failed"] and res["option"] == "pool"


def test_pool_main(monkeypatch):
    args = dict(name="vft-sto-mp", type="dir", target="/vft/sto", state="active")
    res = run(monkeypatch, pool, check_mode=True, **args)
    assert res["changed"] and res["active"] and res["diff"]["before"] == ""
    res = run(monkeypatch, pool, **args)
    assert res["changed"] and res["active"]
    res = run(monkeypatch, pool, **args)
    assert not res["changed"]
    res = run(monkeypatch, pool, name="vft-sto-mp", state="absent")
    assert res["changed"]


def test_network_main(monkeypatch):
    args = dict(name="vft-sto-mn", forward="none", bridge="vfstomn0", state="active",
                ip=dict(address="10.252.7.1", prefix=24))
    res = run(monkeypatch, network, check_mode=True, **args)
    assert res["changed"] and res["active"]
    res = run(monkeypatch, network, **args)
    assert res["changed"] and res["active"]
    res = run(monkeypatch, network, **args)
    assert not res["changed"]
    res = run(monkeypatch, network, name="vft-sto-mn", bridge="x" * 16)
    assert res["failed"] and res["option"] == "bridge"
    res = run(monkeypatch, network, name="vft-sto-mn", state="absent")
    assert res["changed"]


def test_volume_list_in_one_task(monkeypatch, tmp_path):
    golden = tmp_path / "golden.qcow2"
    res = run(monkeypatch, volume, directory=str(tmp_path), name="golden.qcow2", capacity="8M")
    assert res["changed"] and golden.exists()
    args = dict(directory=str(tmp_path), clone_from=str(golden), mode="linked",
                volumes=[dict(name="a.qcow2"), dict(name="b.qcow2", capacity="16M"),
                         dict(name="c.raw", mode="full", format="raw")])
    res = run(monkeypatch, volume, check_mode=True, **args)
    assert res["changed"] and [v["changed"] for v in res["volumes"]] == [True, True, True]
    assert sorted(os.listdir(tmp_path)) == ["golden.qcow2"]
    res = run(monkeypatch, volume, **args)
    assert [v["name"] for v in res["volumes"]] == ["a.qcow2", "b.qcow2", "c.raw"]
    assert res["volumes"][0]["backing"] == str(golden) and res["volumes"][1]["capacity"] == 16 * 1024 ** 2
    assert res["volumes"][2]["backing"] is None and res["volumes"][2]["format"] == "raw"
    res = run(monkeypatch, volume, **args)
    assert not res["changed"] and not any(v["changed"] for v in res["volumes"])


def test_volume_list_bad_item_changes_nothing(monkeypatch, tmp_path):
    res = run(monkeypatch, volume, directory=str(tmp_path), capacity="1M",
              volumes=[dict(name="ok.qcow2"), dict(name="../escape.qcow2")])
    assert res["failed"] and res["option"] == "volumes[1].name" and "../escape.qcow2" in res["msg"]
    res = run(monkeypatch, volume, capacity="1M", volumes=[dict(name="ok.qcow2")])
    assert res["failed"] and res["option"] == "volumes[0].pool"
    res = run(monkeypatch, volume, directory=str(tmp_path), volumes=[dict(name="x.qcow2", colour="red")])
    assert res["failed"] and "unknown option(s) colour" in res["msg"]
    assert os.listdir(tmp_path) == []
