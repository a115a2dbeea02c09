"""P2V live: the SSH side's facts, disk choice, freeze order, and the verified sparse stream."""

import hashlib
import json
import os
import stat
import subprocess

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils._convert import remote
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError
from ansible_collections.virtforge.libvirt.plugins.module_utils._image.common import PhaseLog

LSBLK = {"blockdevices": [
    {"name": "sda", "kname": "sda", "type": "disk", "size": 8589934592, "mountpoint": None, "pkname": None,
     "fstype": None},
    {"name": "sda1", "kname": "sda1", "type": "part", "size": 536870912, "mountpoint": "/boot", "pkname": "sda",
     "fstype": "ext4"},
    {"name": "sda2", "kname": "sda2", "type": "part", "size": 7516192768, "mountpoint": None, "pkname": "sda",
     "fstype": "LVM2_member"},
    {"name": "vg-root", "kname": "dm-0", "type": "lvm", "size": 6442450944, "mountpoint": "/", "pkname": "sda2",
     "fstype": "xfs"},
    {"name": "vg-var", "kname": "dm-1", "type": "lvm", "size": 536870912, "mountpoint": "/var/lib/data",
     "pkname": "sda2", "fstype": "ext4"},
    {"name": "vg-swap", "kname": "dm-2", "type": "lvm", "size": 536870912, "mountpoint": "[SWAP]",
     "pkname": "sda2", "fstype": "swap"},
    {"name": "sda3", "kname": "sda3", "type": "part", "size": 1024, "mountpoint": "/boot/efi", "pkname": "sda",
     "fstype": "vfat"},
    {"name": "sdb", "kname": "sdb", "type": "disk", "size": 1073741824, "mountpoint": "/srv", "pkname": None,
     "fstype": "ext4"},
]}

FACTS_TEXT = """cpus=4
memkib=4030000
root=/dev/mapper/vg-root
nic=eno2 00:25:90:AA:BB:02
nic=eno1 00:25:90:aa:bb:01
nic=bad not-a-mac
fsfreeze=/usr/sbin/fsfreeze
bash=/usr/bin/bash
uid=0
lsblk=%s
""" % json.dumps(LSBLK)


def ssh(**kw):
    out = dict(host="10.0.0.5", user="root", port=22, private_key=None, proxy_command=None, known_hosts=None,
               host_key_checking="yes", connect_timeout=30)
    out.update(kw)
    return out


def test_parse_facts_and_root_disk():
    facts = remote.parse_facts(FACTS_TEXT)
    assert facts["cpus"] == 4 and facts["memory_kib"] == 4030000 and facts["uid"] == 0
    assert facts["nics"] == [("eno2", "00:25:90:aa:bb:02"), ("eno1", "00:25:90:aa:bb:01")]
    assert facts["fsfreeze"] == "/usr/sbin/fsfreeze"
    # / is on LVM on sda2: followed up to the disk
    assert remote.root_disk(facts) == "sda"


def test_disk_mounts_deepest_first_root_last_swap_and_vfat_apart():
    facts = remote.parse_facts(FACTS_TEXT)
    mounts, others = remote.disk_mounts(facts, "sda")
    assert mounts == ["/var/lib/data", "/boot", "/"]
    assert others == ["/boot/efi"]
    assert remote.disk_mounts(facts, "sdb") == (["/srv"], [])


def test_remote_disk_choice_and_errors():
    src = remote.RemoteSource(ssh(), PhaseLog())
    src.facts = remote.parse_facts(FACTS_TEXT)
    assert src.disk(None, "src")[:2] == ("/dev/sda", 8589934592)
    assert src.disk("/dev/sdb", "src")[0] == "/dev/sdb"
    with pytest.raises(VirtforgeError, match=r"/dev/sda2 is not a disk of 10.0.0.5 \(its disks: /dev/sda, /dev/sdb\)"):
        src.disk("/dev/sda2", "src")
    with pytest.raises(VirtforgeError, match="not a device path"):
        src.disk("/dev/sda; rm -rf /", "src")


@pytest.mark.parametrize("bad, option", [
    (dict(host="-oProxyCommand=x"), "ssh.host"), (dict(host="a b"), "ssh.host"), (dict(user="r;id"), "ssh.user"),
    (dict(port=0), "ssh.port"), (dict(private_key="/nonexistent/key"), "ssh.private_key"),
    (dict(connect_timeout=0), "ssh.connect_timeout")])
def test_ssh_params_refused(bad, option):
    with pytest.raises(VirtforgeError) as err:
        remote.check_ssh_params(ssh(**bad))
    assert err.value.option == option


def test_ssh_argv_is_a_list_with_the_options():
    argv = remote.ssh_argv(ssh(proxy_command="ip netns exec lab nc %h %p", known_hosts="/k", private_key="/id"),
                           "true")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "10.0.0.5", "true"]
    assert "ProxyCommand=ip netns exec lab nc %h %p" in argv and "UserKnownHostsFile=/k" in argv
    assert argv[argv.index("-i") + 1] == "/id" and "BatchMode=yes" in argv


def test_stream_script_is_valid_bash_and_thaws_in_reverse():
    script = remote.stream_script("/dev/sda", ["/var/lib/data", "/"], 3600)
    subprocess.run(["bash", "-n"], input=script.encode(), check=True)
    assert script.index("fsfreeze -f /var/lib/data ") < script.index("fsfreeze -f / ")
    assert "thaw() { fsfreeze -u / 2>/dev/null; fsfreeze -u /var/lib/data 2>/dev/null; rm -rf \"$work\"; }" in script
    assert "trap thaw EXIT" in script and "sleep 3600" in script
    assert "fsfreeze" not in remote.stream_script("/dev/sda", [], 3600)


@pytest.fixture
def local_ssh(tmp_path, monkeypatch):
    """An 'ssh' that runs the remote command here (bash -c), so the stream logic runs for real."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ssh"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    return tmp_path


def test_copy_sparse_and_verified(local_ssh):
    disk = local_ssh / "disk.raw"
    data = os.urandom(3 << 20)
    with open(disk, "wb") as handle:
        handle.write(data[:1 << 20])
        handle.seek(8 << 20)
        handle.write(data)
        handle.truncate(16 << 20)
    size = os.path.getsize(disk)
    src = remote.RemoteSource(ssh(host="localhost"), PhaseLog())
    src.facts = dict(bash="/bin/bash")
    dest = local_ssh / "copy.raw"
    total, _seconds, digest = src.copy(str(disk), size, [], str(dest), 3600)
    assert total == size == os.path.getsize(dest)
    with open(disk, "rb") as a, open(dest, "rb") as b:
        assert a.read() == b.read()
    assert digest == hashlib.sha256(disk.read_bytes()).hexdigest()
    # the 12 MiB of zeros are holes in the copy
    assert os.stat(dest).st_blocks * 512 <= (5 << 20)


def test_copy_refuses_short_stream_and_failed_read(local_ssh):
    disk = local_ssh / "disk.raw"
    disk.write_bytes(b"x" * (1 << 20))
    src = remote.RemoteSource(ssh(host="localhost"), PhaseLog())
    src.facts = dict(bash="/bin/bash")
    with pytest.raises(VirtforgeError, match="ended after 1048576 of 2097152 bytes"):
        src.copy(str(disk), 2 << 20, [], str(local_ssh / "c1"), 3600)
    with pytest.raises(VirtforgeError, match="reading .*missing.* failed"):
        src.copy(str(local_ssh / "missing"), 1 << 20, [], str(local_ssh / "c2"), 3600)
    assert stat.S_ISREG(os.stat(disk).st_mode)
