# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel_args' engine: the GRUB file of its own, grubby's argument lists, reboot_required."""

from __future__ import annotations

import os

import pytest

from ansible_collections.virtforge.libvirt.plugins.module_utils import _kernel_args
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import VirtforgeError


class Runner(object):
    def __init__(self, tools, grubby_args=""):
        self.tools, self.calls, self.grubby_args = tools, [], grubby_args

    def which(self, tool, required=True):
        if tool in self.tools:
            return "/usr/sbin/" + tool
        if required:
            raise VirtforgeError("the command %r is not installed" % tool)
        return None

    def run(self, argv, check=True, what=None, **_kw):
        self.calls.append(list(argv))
        if argv[1:] == ["--info=DEFAULT"]:
            return 0, 'index=0\nkernel="/boot/vmlinuz"\nargs="%s"\nroot="/dev/vda1"\n' % self.grubby_args, ""
        return 0, "", ""


def _root(tmp_path, grub='GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0"\nGRUB_CMDLINE_LINUX=""\n',
          cmdline="BOOT_IMAGE=/vmlinuz root=UUID=x ro console=ttyS0"):
    for rel, text in (("etc/default/grub", grub), ("proc/cmdline", cmdline + "\n")):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


def _params(args, **kw):
    return dict(dict(args=args, state="present", provider="auto", grub_file=_kernel_args.GRUB_D_FILE), **kw)


def test_grub_writes_its_own_file_runs_update_grub_and_asks_for_a_reboot(tmp_path):
    root, runner = _root(tmp_path), Runner({"update-grub"})
    result = _kernel_args.run(_params(["intel_iommu=on", "iommu=pt"]), runner, False, root)
    assert result["changed"] and result["provider"] == "grub" and result["args"] == ["intel_iommu=on", "iommu=pt"]
    assert result["reboot_required"] and result["reboot_for"] == ["intel_iommu=on", "iommu=pt"]
    text = (tmp_path / "etc/default/grub.d/90-virtforge.cfg").read_text()
    assert text.endswith('GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX intel_iommu=on iommu=pt"\n')
    assert runner.calls == [["/usr/sbin/update-grub"]]
    assert "console=ttyS0" in result["configured"] and result["diff"]["before"] == ""
    # again: nothing to write, the bootloader is not regenerated; still waiting for the reboot
    again = _kernel_args.run(_params(["iommu=pt", "intel_iommu=on"]), runner, False, root)
    assert not again["changed"] and again["reboot_required"] and runner.calls == [["/usr/sbin/update-grub"]]


def test_after_the_reboot_nothing_is_required(tmp_path):
    root = _root(tmp_path, cmdline="root=/dev/vda1 ro intel_iommu=on iommu=pt")
    os.makedirs(os.path.join(root, "etc/default/grub.d"))
    (tmp_path / "etc/default/grub.d/90-virtforge.cfg").write_text(
        _kernel_args.GrubProvider(None).render(["intel_iommu=on", "iommu=pt"]))
    result = _kernel_args.run(_params(["intel_iommu=on"]), Runner({"update-grub"}), False, root)
    assert not result["changed"] and not result["reboot_required"]


def test_grub_value_replaces_and_absent_removes_then_deletes_the_file(tmp_path):
    root, runner = _root(tmp_path), Runner({"grub-mkconfig"})
    (tmp_path / "boot/grub2").mkdir(parents=True)
    (tmp_path / "boot/grub2/grub.cfg").write_text("")
    _kernel_args.run(_params(["iommu=nopt", "hugepagesz=1G"]), runner, False, root)
    result = _kernel_args.run(_params(["iommu=pt"]), runner, False, root)
    assert result["args"] == ["iommu=pt", "hugepagesz=1G"]  # replaced in place
    assert runner.calls[-1] == ["/usr/sbin/grub-mkconfig", "-o", "/boot/grub2/grub.cfg"]
    result = _kernel_args.run(_params(["iommu", "hugepagesz=1G"], state="absent"), runner, False, root)
    assert result["changed"] and result["args"] == []
    assert not (tmp_path / "etc/default/grub.d/90-virtforge.cfg").exists()
    # a RHEL-family GRUB without grubby: grub2-mkconfig
    runner = Runner({"grub2-mkconfig"})
    _kernel_args.run(_params(["iommu=pt"]), runner, False, root)
    assert runner.calls[-1] == ["/usr/sbin/grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]


def test_grub_counts_what_etc_default_grub_sets_and_never_edits_it(tmp_path):
    root = _root(tmp_path, grub='GRUB_CMDLINE_LINUX="quiet intel_iommu=on"\n')
    result = _kernel_args.run(_params(["intel_iommu=on"]), Runner({"update-grub"}), False, root)
    assert not result["changed"]
    result = _kernel_args.run(_params(["intel_iommu=on"], state="absent"), Runner({"update-grub"}), False, root)
    assert not result["changed"] and "/etc/default/grub sets them" in result["warnings"][0]


def test_check_mode_writes_nothing(tmp_path):
    root, runner = _root(tmp_path), Runner({"update-grub"})
    result = _kernel_args.run(_params(["intel_iommu=on"]), runner, True, root)
    assert result["changed"] and result["reboot_required"] and runner.calls == []
    assert not (tmp_path / "etc/default/grub.d").exists()
    assert "intel_iommu=on" in result["diff"]["after"]


def test_grubby_adds_and_removes_with_argument_lists(tmp_path):
    root = _root(tmp_path)
    runner = Runner({"grubby", "update-grub"}, grubby_args="ro crashkernel=auto iommu=nopt")
    result = _kernel_args.run(_params(["intel_iommu=on", "iommu=pt"]), runner, False, root)
    assert result["provider"] == "grubby" and result["changed"]
    # iommu=pt replaces iommu=nopt (grubby --args replaces a value); nothing is removed
    assert runner.calls[1:] == [["/usr/sbin/grubby", "--update-kernel=ALL", "--args=iommu=pt intel_iommu=on"]]
    runner = Runner({"grubby"}, grubby_args="ro intel_iommu=on iommu=pt")
    _kernel_args.run(_params(["iommu"], state="absent"), runner, False, root)
    assert runner.calls[1:] == [["/usr/sbin/grubby", "--update-kernel=ALL", "--remove-args=iommu=pt"]]
    runner = Runner({"grubby"}, grubby_args="ro intel_iommu=on iommu=pt")
    assert not _kernel_args.run(_params(["intel_iommu=on"]), runner, False, root)["changed"]


@pytest.mark.parametrize("arg", ["a b", 'x="1"', "$(reboot)", "", "a;b"])
def test_arguments_that_would_be_shell_or_several_are_refused(arg):
    with pytest.raises(VirtforgeError, match=r"args\[0\]: .* is not a kernel argument"):
        _kernel_args.validate([arg])


def test_no_bootloader_tool(tmp_path):
    with pytest.raises(VirtforgeError, match="provider: neither grubby nor GRUB"):
        _kernel_args.run(_params(["iommu=pt"]), Runner(set()), False, _root(tmp_path))
