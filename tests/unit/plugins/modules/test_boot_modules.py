"""main() of vfio_bind and kernel_args on fake trees: check mode, diff, refusals as one message."""

import functools
import os
import sys

import pytest
from ansible.module_utils import basic

from ansible_collections.virtforge.libvirt.plugins.module_utils import _kernel_args, _vfio
from ansible_collections.virtforge.libvirt.plugins.modules import kernel_args, vfio_bind

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "module_utils"))
from module_main import main_outcome  # noqa: E402
from test_vfio import MGMT, NIC_A, Tree  # noqa: E402


def run(monkeypatch, module, check_mode=False, diff=False, **args):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: (0, "", ""))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, tool, required=False, opt_dirs=None:
                        "/usr/sbin/" + tool if tool in ("update-grub", "udevadm", "modprobe") else None)
    return main_outcome(monkeypatch, module, args, check_mode=check_mode, diff=diff)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    t = Tree(tmp_path)
    t.device(NIC_A, "8086:10d3", 0x020000, "e1000e", 12).nic(NIC_A, "enp3s0")
    t.device(MGMT, "1af4:1041", 0x020000, "virtio-pci", 2).nic(MGMT, "enp1s0", up=True)
    monkeypatch.setattr(_vfio, "plan", functools.partial(_vfio.plan, root=t.root))
    return t


def test_vfio_bind_check_mode_and_diff(monkeypatch, tree):
    rules = os.path.join(tree.root, "rules")
    out = run(monkeypatch, vfio_bind, check_mode=True, diff=True, ids=["8086:10D3"], rules_file=rules)
    assert not out["failed"] and out["changed"]
    assert out["devices"][0]["action"] == "bind" and out["devices"][0]["driver"] == "vfio-pci"
    assert out["diff"]["before"] == "0000:03:00.0 e1000e\n"
    assert out["diff"]["after"].startswith("0000:03:00.0 vfio-pci\n# Managed by virtforge.libvirt vfio_bind")
    assert not os.path.exists(rules)


def test_vfio_bind_refusal_is_one_message_and_changes_nothing(monkeypatch, tree):
    rules = os.path.join(tree.root, "rules")
    out = run(monkeypatch, vfio_bind, addresses=[MGMT], rules_file=rules)
    assert out["failed"] and out["msg"].startswith("addresses: refused, nothing changed: 0000:01:00.0 is a NIC")
    assert out["refusals"] and not os.path.exists(rules)


def test_kernel_args_module_refuses_a_file_grub_does_not_read(monkeypatch):
    out = run(monkeypatch, kernel_args, args=["iommu=pt"], grub_file="/etc/default/grub.d/virtforge")
    assert out["failed"] and out["msg"].startswith("grub_file: /etc/default/grub.d/virtforge is not a .cfg file")


def test_kernel_args_module_check_mode(monkeypatch, tmp_path):
    (tmp_path / "etc/default").mkdir(parents=True)
    (tmp_path / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX=""\n')
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cmdline").write_text("ro quiet\n")
    monkeypatch.setattr(_kernel_args, "run", functools.partial(_kernel_args.run, root=str(tmp_path)))
    out = run(monkeypatch, kernel_args, check_mode=True, diff=True, args=["intel_iommu=on"])
    assert not out["failed"] and out["changed"] and out["reboot_required"] and out["provider"] == "grub"
    assert "intel_iommu=on" in out["diff"]["after"] and not (tmp_path / "etc/default/grub.d").exists()
