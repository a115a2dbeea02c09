# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""V2V (and the conversion half of P2V): a foreign guest into a KVM domain.

plan: the input (disk image / OVA with its manifest verified / .vmx / a libvirt guest by URI) is checked,
the output (pool or directory) resolved, existing targets found -> [check mode stops here]
apply: virt-v2v ``-o local`` (or ``qemu-img convert`` with ``inspect: false``) into a temporary
directory inside the output directory -> disks renamed into place -> the domain defined through the
domain engine, fitted to this host (domain type, devices it lacks, NICs by ``network_map``, MACs).
A failure anywhere removes the temporary directory and any disk already renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time

from .._errors import VirtforgeError
from .._validate import check_name
from .._volume import dir_location, pool_location
from .._domain.devices import _dev_name
from . import ova, vmx
from .._image.common import PhaseLog
from .common import Interrupted, conversion_environment, interruptible
from .domain import base_params, define, fit_xml

INPUT_MODES = ["auto", "disk", "ova", "vmx", "libvirt"]
DISK_EXTENSIONS = {".vmdk": "vmdk", ".vhd": "vpc", ".vhdx": "vhdx", ".qcow2": "qcow2", ".raw": "raw",
                   ".img": "raw", ".vdi": "vdi"}
NETWORK_MAP_SPEC = dict(source=dict(type="str", required=True), network=dict(type="str"),
                        bridge=dict(type="str"))

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    src=dict(type="path"),
    input=dict(type="str", choices=INPUT_MODES, default="auto"),
    src_format=dict(type="str", choices=["vmdk", "vpc", "vhdx", "qcow2", "raw", "vdi"]),
    src_uri=dict(type="str"),
    src_name=dict(type="str"),
    src_password=dict(type="str", no_log=True),
    pool=dict(type="str"),
    directory=dict(type="path"),
    format=dict(type="str", choices=["qcow2", "raw"], default="qcow2"),
    inspect=dict(type="bool", default=True),
    verify_manifest=dict(type="bool", default=True),
    network_map=dict(type="list", elements="dict", options=NETWORK_MAP_SPEC, default=[]),
    default_network=dict(type="str"),
    keep_macs=dict(type="bool", default=True),
    macs=dict(type="list", elements="str"),
    vcpus=dict(type="int"),
    memory=dict(type="raw"),
    disk_bus=dict(type="str", choices=["virtio", "sata", "ide", "scsi"]),
    nic_model=dict(type="str", choices=["virtio", "e1000e", "e1000", "rtl8139"]),
    state=dict(type="str", choices=["present", "running"], default="present"),
    wait_for=dict(type="list", elements="str", choices=["agent", "ip"]),
    wait_timeout=dict(type="int", default=300),
    force=dict(type="bool", default=False),
    log_path=dict(type="path"),
)

_V2V_LINE = re.compile(r"^\[\s*([0-9.]+)\]\s+(.*\S)\s*$")


def detect_input(params):
    mode = params["input"]
    if params.get("src_uri") or params.get("src_name"):
        if mode not in ("auto", "libvirt"):
            raise VirtforgeError("src_uri/src_name go with input: libvirt", option="input")
        if not (params.get("src_uri") and params.get("src_name")):
            raise VirtforgeError("input libvirt needs both src_uri and src_name",
                                 option="src_name" if params.get("src_uri") else "src_uri")
        if params.get("src"):
            raise VirtforgeError("give either src, or src_uri and src_name", option="src")
        return "libvirt"
    if mode == "libvirt":
        raise VirtforgeError("input libvirt needs src_uri and src_name", option="src_uri")
    if not params.get("src"):
        raise VirtforgeError("src is required (or src_uri and src_name)", option="src")
    if mode != "auto":
        return mode
    ext = os.path.splitext(params["src"])[1].lower()
    if ext == ".ova" or os.path.isdir(params["src"]):
        return "ova"
    if ext == ".vmx":
        return "vmx"
    return "disk"


def parse_v2v_phases(text):
    """virt-v2v's '[  12.3] Doing X' lines -> [{'phase': 'Doing X', 'start': 12.3, 'seconds': ...}]."""
    marks = []
    for line in (text or "").splitlines():
        match = _V2V_LINE.match(line)
        if match:
            marks.append((float(match.group(1)), match.group(2)))
    out = []
    for i, (start, what) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else None
        out.append(dict(phase=what, start=start, seconds=round(end - start, 1) if end is not None else None))
    return out


class Converter(object):
    kind = "v2v"

    def __init__(self, module, runner, connect):
        self.module = module
        self.runner = runner
        self.params = module.params
        self.connect = connect
        self.log = PhaseLog(self.params.get("log_path"))
        self.notes = []

    # ------------------------------------------------------------------ plan
    def plan(self):
        p = self.params
        check_name(p["name"], option="name", kind="domain name")
        mode = self.input_mode()
        plan = dict(input=mode, inspect=p["inspect"], manifest=None, src_info=None)
        if p.get("pool") and p.get("directory"):
            raise VirtforgeError("give either pool or directory", option="directory")
        if not (p.get("pool") or p.get("directory")):
            raise VirtforgeError("pool or directory is required (where the converted disks go)", option="pool")
        if p.get("memory") is not None and not isinstance(p["memory"], (int, str)):
            raise VirtforgeError("memory is a size such as 1024 (MiB) or '2GiB'", option="memory")
        if p.get("vcpus") is not None and p["vcpus"] < 1:
            raise VirtforgeError("must be at least 1", option="vcpus")
        for i, item in enumerate(p["network_map"]):
            if bool(item.get("network")) == bool(item.get("bridge")):
                raise VirtforgeError("give one of network or bridge", option="network_map[%d]" % i)
        conn = self.connect()
        networks = set(conn.listNetworks()) | set(conn.listDefinedNetworks())
        for i, item in enumerate(p["network_map"]):
            if item.get("network") and item["network"] not in networks:
                raise VirtforgeError("network %r does not exist" % item["network"],
                                     option="network_map[%d].network" % i)
        if p.get("default_network") and p["default_network"] not in networks:
            raise VirtforgeError("network %r does not exist" % p["default_network"], option="default_network")
        self.networks = networks
        for i, mac in enumerate(p.get("macs") or []):
            if not re.match(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$", mac or ""):
                raise VirtforgeError("%r is not a MAC address" % mac, option="macs[%d]" % i)
        location = pool_location(conn, p["pool"], "pool") if p.get("pool") else dir_location(p["directory"])
        plan["location"] = location
        existing = None
        try:
            existing = conn.lookupByName(p["name"])
        except Exception:  # pylint: disable=broad-except
            existing = None
        plan["existing"] = existing is not None  # known before the source is read (P2V live skips it then)
        self.check_src_path(mode)
        self.check_source(plan)
        if not p["inspect"] and mode != "disk":
            raise VirtforgeError("inspect: false converts disk images only (input disk); %s needs virt-v2v"
                                 % mode, option="inspect")
        plan["disk_paths"] = self.planned_disks(location, plan)
        present = [d for d in plan["disk_paths"] if os.path.lexists(d)]
        if existing is not None:
            if existing.isActive() and p["force"]:
                raise VirtforgeError("domain %s is running; it cannot be replaced" % p["name"], option="force",
                                     fix="Stop it first")
            plan["up_to_date"] = not p["force"]
        else:
            plan["up_to_date"] = False
            if present and not p["force"]:
                raise VirtforgeError("%s already exist(s) (a disk of an earlier conversion?)" % ", ".join(present),
                                     option="name", fix="Remove it, choose another name, or set force: true")
        return plan

    def input_mode(self):
        return detect_input(self.params)

    def check_src_path(self, mode):
        if mode == "libvirt":
            return
        src = self.params["src"]
        if not os.path.isabs(src):
            raise VirtforgeError("%r is not an absolute path" % src, option="src")
        if not os.path.exists(src):
            raise VirtforgeError("%s does not exist" % src, option="src")

    def check_source(self, plan):
        p = self.params
        mode = plan["input"]
        if mode == "ova":
            if p["verify_manifest"]:
                with self.log.phase("manifest", "verifying the OVA manifest of %s" % p["src"]):
                    plan["manifest"] = ova.verify(p["src"], option="src")
        elif mode == "disk":
            plan["src_info"] = self.check_disk_image(p["src"], p.get("src_format"), "src")
        elif mode == "vmx":
            if not os.path.isfile(p["src"]):
                raise VirtforgeError("%s is not a file" % p["src"], option="src")
            # the disks virt-v2v will read: each checked like a disk image (a truncated one refused here)
            values = vmx.read(p["src"], option="src")
            plan["vmx_disks"] = [dict(slot=d["slot"], path=d["path"], file_size=os.path.getsize(d["path"]),
                                      **self.check_disk_image(d["path"], None, "src"))
                                 for d in vmx.hard_disks(p["src"], values, option="src")]
            plan["vmx_nics"] = vmx.nics(values)

    def check_disk_image(self, path, fmt, option):
        """qemu-img info and check (metadata only): a truncated or damaged image is refused here,
        before any conversion starts."""
        argv = ["qemu-img", "info", "--output=json", "-U"] + (["-f", fmt] if fmt else []) + [path]
        rc, out, err = self.runner.run(argv, check=False, what="qemu-img info")
        if rc != 0:
            raise VirtforgeError("%s is not a readable disk image: %s" % (path, (err or out).strip()[-300:]),
                                 option=option)
        import json  # pylint: disable=import-outside-toplevel
        info = json.loads(out)
        fmt = fmt or info.get("format")
        if fmt in ("qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed", "parallels"):
            rc, out, err = self.runner.run(["qemu-img", "check", "-U", "-f", fmt, path], check=False,
                                           what="qemu-img check")
            text = (out + err).strip()
            if rc not in (0,) and "does not support checks" not in text:
                raise VirtforgeError("%s is damaged or truncated (qemu-img check, exit %d): %s"
                                     % (path, rc, text[-400:]), option=option,
                                     fix="Copy or export the image again")
        if info.get("format") == "raw" and fmt == "raw":
            pass
        return dict(format=fmt, virtual_size=info.get("virtual-size"))

    def planned_disks(self, location, plan):
        ext = ".qcow2" if self.params["format"] == "qcow2" else ".img"
        if plan["input"] == "disk" or not plan["inspect"]:
            return [os.path.join(location.directory, "%s-sda%s" % (self.params["name"], ext))]
        if plan.get("vmx_disks"):
            # virt-v2v -o local names them NAME-sda, NAME-sdb... in turn
            return [os.path.join(location.directory, "%s-%s%s" % (self.params["name"], _dev_name("sd", i), ext))
                    for i in range(len(plan["vmx_disks"]))]
        return []  # known after virt-v2v; checked again before renaming

    # ----------------------------------------------------------------- apply
    def v2v_argv(self, plan, outdir, password_file=None):
        p = self.params
        argv = ["virt-v2v"]
        mode = plan["input"]
        if mode == "disk":
            argv += ["-i", "disk"]
            if p.get("src_format"):
                argv += ["-if", p["src_format"]]
            argv.append(p["src"])
        elif mode == "ova":
            argv += ["-i", "ova", p["src"]]
        elif mode == "vmx":
            argv += ["-i", "vmx", p["src"]]
        else:
            argv += ["-i", "libvirt", "-ic", p["src_uri"]]
            if password_file:
                argv += ["-ip", password_file]
            argv.append(p["src_name"])
        argv += ["-o", "local", "-os", outdir, "-of", p["format"], "-on", p["name"]]
        return argv

    def _run_logged(self, argv, env, logfile):
        """Run a long tool with its output appended to the log (tail -f) and to logfile."""
        full_env = dict(os.environ)
        full_env.update(env)
        full_env.setdefault("LANG", "C")
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=full_env)
            try:
                rc = proc.wait()
            except BaseException:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
        with open(logfile, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
        if self.params.get("log_path"):
            self.log.line("---- %s output ----\n%s" % (os.path.basename(argv[0]), text.rstrip()))
        return rc, text

    def convert(self, plan, work):
        p = self.params
        disks = []
        if p["inspect"]:
            env = conversion_environment()
            password_file = None
            if p.get("src_password"):
                password_file = os.path.join(work, "password")
                fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(p["src_password"])
            outdir = os.path.join(work, "out")
            os.mkdir(outdir)
            argv = self.v2v_argv(plan, outdir, password_file)
            with self.log.phase("virt-v2v", " ".join(argv)):
                rc, text = self._run_logged(argv, env, os.path.join(work, "virt-v2v.log"))
            plan["v2v_phases"] = parse_v2v_phases(text)
            plan["argv"] = argv
            if rc != 0:
                tail = "\n".join(text.strip().splitlines()[-12:])
                raise VirtforgeError("virt-v2v failed (exit %d): %s" % (rc, tail), command=argv, rc=rc)
            xml_path = os.path.join(outdir, "%s.xml" % p["name"])
            with open(xml_path) as handle:
                plan["v2v_xml"] = handle.read()
            for entry in sorted(os.listdir(outdir)):
                if entry.startswith(p["name"] + "-sd"):
                    disks.append(os.path.join(outdir, entry))
        else:
            out = os.path.join(work, "%s-sda" % p["name"])
            argv = ["qemu-img", "convert", "-p", "-O", p["format"]]
            if plan.get("src_info", {}).get("format"):
                argv += ["-f", plan["src_info"]["format"]]
            argv += [p["src"], out]
            with self.log.phase("copy", "qemu-img convert (no inspection, no driver fix-up)"):
                self.runner.run(argv, what="qemu-img convert")
            with self.log.phase("verify", "qemu-img compare of the copy against the source"):
                compare = ["qemu-img", "compare", "-U", "-F", self.params["format"]]
                if plan.get("src_info", {}).get("format"):
                    compare += ["-f", plan["src_info"]["format"]]
                self.runner.run(compare + [p["src"], out], what="qemu-img compare")
            plan["verified"] = True
            plan["argv"] = argv
            disks.append(out)
        return disks

    def place(self, plan, disks):
        """Rename converted disks into the output directory; returns (dev, final path) pairs."""
        ext = ".qcow2" if self.params["format"] == "qcow2" else ".img"
        placed = []
        for disk in disks:
            name = os.path.basename(disk)
            dev = name[len(self.params["name"]) + 1:]
            final = os.path.join(plan["location"].directory, name + ext)
            if os.path.lexists(final) and not self.params["force"]:
                raise VirtforgeError("%s already exists" % final, option="name",
                                     fix="Remove it, choose another name, or set force: true")
            placed.append((dev, disk, final))
        done = []
        try:
            for dev, disk, final in placed:
                os.rename(disk, final)
                done.append((dev, final))
        except BaseException:
            for _dev, final in done:
                os.unlink(final)
            raise
        plan["location"].refresh()
        return done

    def domain_params(self, plan, placed):
        p = self.params
        params = base_params(p.get("uri"))
        params.update(name=p["name"], state=p["state"], wait_for=p.get("wait_for"),
                      wait_timeout=p["wait_timeout"])
        if p.get("vcpus"):
            params["vcpus"] = p["vcpus"]
        if p.get("memory") is not None:
            # the machine's memory: all of it present (virt-v2v's XML may carry a larger maximum)
            params["memory"] = params["max_memory"] = p["memory"]
        nics, v2v_disks, removed = [], [], []
        if plan.get("v2v_xml"):
            xml, removed, nics, v2v_disks = fit_xml(plan["v2v_xml"])
            params["xml"] = xml
        else:
            params["vcpus"] = params.get("vcpus") or 1
            params["memory"] = params.get("memory") or 1024
            params["guest_agent"] = True
            params["serial_console"] = True
            nics = [dict(source=None, mac=None, model=None)]
        buses = {d["dev"]: d["bus"] for d in v2v_disks if d.get("dev")}
        disks = []
        for dev, path in placed:
            bus = p.get("disk_bus") or buses.get(dev) or "virtio"
            disks.append(dict(path=path, format=p["format"], bus=bus))
        params["disks"] = disks
        interfaces = []
        macs = p.get("macs") or []
        # a .vmx's NICs, one for one with virt-v2v's: their static MACs, which virt-v2v does not carry over
        # (it reads only generatedAddress, even where addressType is static)
        vmx_nics = plan.get("vmx_nics") or []
        vmx_nics = vmx_nics if len(vmx_nics) == len(nics) else []
        for i, nic in enumerate(nics if nics or not macs else [dict(source=None, mac=None, model=None)] * len(macs)):
            item = dict(model=p.get("nic_model") or nic.get("model") or "virtio")
            target = self.map_network(nic.get("source"), i)
            item.update(target)
            if i < len(macs):
                item["mac"] = macs[i]
            elif p["keep_macs"] and i < len(vmx_nics) and vmx_nics[i]["static"] and vmx_nics[i]["mac"]:
                item["mac"] = vmx_nics[i]["mac"]
                if nic.get("mac") != item["mac"]:
                    self.notes.append("NIC %d keeps %s, the static MAC address of the .vmx's %s (%s)" % (
                        i, item["mac"], vmx_nics[i]["slot"],
                        "virt-v2v gave it %s, a leftover generatedAddress" % nic["mac"] if nic.get("mac")
                        else "virt-v2v does not carry static addresses over"))
            elif p["keep_macs"] and nic.get("mac"):
                item["mac"] = nic["mac"]
            interfaces.append(item)
        for i in range(len(nics), len(macs)):
            item = dict(model=p.get("nic_model") or "virtio", mac=macs[i])
            item.update(self.map_network(None, i))
            interfaces.append(item)
        params["interfaces"] = interfaces
        plan["removed_devices"] = removed
        return params

    def map_network(self, source, index):
        for item in self.params["network_map"]:
            if source is not None and item["source"] == source:
                return dict(network=item["network"]) if item.get("network") else dict(bridge=item["bridge"])
        if self.params.get("default_network"):
            return dict(network=self.params["default_network"])
        if source and source in self.networks:
            return dict(network=source)
        if not source:
            # a disk image alone, or a source NIC that names no network: nothing to map it by
            raise VirtforgeError("NIC %d of the guest names no source network, so network_map cannot place it"
                                 % index, option="default_network",
                                 fix="Set default_network (a libvirt network of this host) for such NICs")
        raise VirtforgeError("NIC %d of the guest is on %r, which network_map does not map and which is not a "
                             "network of this host" % (index, source), option="network_map",
                             fix="Add {source: %r, network: NAME} to network_map, or set default_network" % source)

    def apply(self, plan):
        location = plan["location"]
        work = tempfile.mkdtemp(prefix=".vf-%s-%s-" % (self.kind, self.params["name"]), dir=location.directory)
        placed = []
        try:
            disks = self.convert(plan, work)
            params = self.domain_params(plan, [(os.path.basename(d)[len(self.params["name"]) + 1:], d)
                                               for d in disks])  # validates the NIC mapping before placing
            placed = self.place(plan, disks)
            for i, (_dev, path) in enumerate(placed):
                params["disks"][i]["path"] = path
            if plan["existing"] and self.params["force"]:
                self._undefine_old()
            with self.log.phase("define", "domain %s through the domain engine" % self.params["name"]):
                result = define(self.module, params)
            return result, placed
        except Interrupted as exc:
            for _dev, path in placed:
                _remove(path)
            raise VirtforgeError("%s; temporary files and converted disks removed" % exc) from None
        except BaseException:
            for _dev, path in placed:
                _remove(path)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
            location.refresh()

    def _undefine_old(self):
        dom = self.connect().lookupByName(self.params["name"])
        dom.undefineFlags(4)  # keep storage; NVRAM removed

    def run(self, check_mode):
        started = time.monotonic()
        plan = self.plan()
        result = dict(changed=not plan["up_to_date"], name=self.params["name"], input=plan["input"],
                      inspect=plan["inspect"], output_directory=plan["location"].directory,
                      manifest=plan["manifest"], vmx_disks=plan.get("vmx_disks"), disks=[], removed_devices=[],
                      log_path=self.params.get("log_path"))
        if not plan["inspect"]:
            self.notes.append("inspect: false - disks converted with qemu-img only: no guest inspection, no "
                              "virtio driver or bootloader fix-up; the guest must already boot on the chosen buses")
        if plan["up_to_date"]:
            result["msg"] = "domain %s already exists (converted earlier); set force: true to convert again" % (
                self.params["name"])
        elif check_mode:
            result["planned_command"] = (self.v2v_argv(plan, "<temporary directory>") if plan["inspect"]
                                         else ["qemu-img", "convert", "-O", self.params["format"],
                                               self.params["src"], "<temporary file>"])
            result["disks"] = plan["disk_paths"]
        else:
            with interruptible():
                domain_result, placed = self.apply(plan)
            result["domain"] = domain_result.get("domain")
            result["disks"] = [path for _dev, path in placed]
            result["removed_devices"] = plan.get("removed_devices", [])
            result["v2v_phases"] = plan.get("v2v_phases", [])
            result["command"] = plan.get("argv")
            result["verified"] = plan.get("verified", False)
        result["notes"] = self.notes
        result["timing"] = dict(self.log.timings, total=round(time.monotonic() - started, 1))
        return result


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def run_module(module, runner, connect, converter=Converter):
    conv = converter(module, runner, connect)
    result = conv.run(module.check_mode)
    for note in conv.notes:
        module.warn(note)
    return result
