# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""P2V live: read a running Linux machine over SSH.

Two SSH sessions, both read-only on the source:
  1. facts - CPUs, memory, block devices (lsblk JSON), the disk holding /, physical NICs and their MACs;
  2. the disk - one remote shell that freezes the disk's mounted filesystems (``fsfreeze``, deepest first),
     arms a watchdog that thaws them if the session dies, streams the device with ``dd`` while ``sha256sum``
     digests the same bytes, thaws, and reports the digest on stderr.
Locally the stream is written sparse-aware (all-zero blocks become holes) and digested; the copy is
accepted only when its size and digest match the source's.

The remote side needs only a POSIX shell, bash (for the digest), coreutils, util-linux (lsblk, fsfreeze)
and root (or a user that may read the disk and freeze filesystems).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import tempfile
import time

from .._errors import VirtforgeError

SSH_SPEC = dict(
    host=dict(type="str", required=True),
    user=dict(type="str", default="root"),
    port=dict(type="int", default=22),
    private_key=dict(type="path"),
    proxy_command=dict(type="str"),
    known_hosts=dict(type="path"),
    host_key_checking=dict(type="str", choices=["yes", "accept-new", "no"], default="yes"),
    connect_timeout=dict(type="int", default=30),
)

FREEZABLE = {"ext2", "ext3", "ext4", "xfs", "btrfs", "jfs", "reiserfs", "f2fs", "nilfs2", "gfs2", "ocfs2"}
CHUNK = 1 << 20
_HOST = re.compile(r"^[A-Za-z0-9_.:%\[\]-]+$")
_USER = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
_DEVICE = re.compile(r"^/dev/[A-Za-z0-9/_.:-]+$")

FACTS_SCRIPT = r"""
echo "cpus=$(nproc)"
awk '/^MemTotal:/ {print "memkib=" $2}' /proc/meminfo
echo "root=$(findmnt -n -o SOURCE / 2>/dev/null)"
for n in /sys/class/net/*; do
  [ -e "$n/device" ] && echo "nic=$(basename "$n") $(cat "$n/address")"
done
echo "fsfreeze=$(command -v fsfreeze || true)"
echo "bash=$(command -v bash || true)"
echo "uid=$(id -u)"
printf 'lsblk='; lsblk -J -l -b -o NAME,KNAME,TYPE,SIZE,MOUNTPOINT,PKNAME,FSTYPE | tr -d '\n'; echo
"""


def check_ssh_params(ssh):
    if not _HOST.match(ssh["host"] or "") or ssh["host"].startswith("-"):
        raise VirtforgeError("%r is not a host name or address" % ssh["host"], option="ssh.host")
    if not _USER.match(ssh["user"] or ""):
        raise VirtforgeError("%r is not a user name" % ssh["user"], option="ssh.user")
    if not 1 <= ssh["port"] <= 65535:
        raise VirtforgeError("port %d is outside 1..65535" % ssh["port"], option="ssh.port")
    if ssh.get("private_key") and not os.path.isfile(ssh["private_key"]):
        raise VirtforgeError("%s does not exist" % ssh["private_key"], option="ssh.private_key")
    if ssh["connect_timeout"] < 1:
        raise VirtforgeError("must be at least 1", option="ssh.connect_timeout")


def ssh_argv(ssh, remote_command):
    """ssh's argument list; the remote command is one shell string by SSH's nature, built with shlex.quote."""
    argv = ["ssh", "-p", str(ssh["port"]), "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=%d" % ssh["connect_timeout"],
            "-o", "StrictHostKeyChecking=%s" % ssh["host_key_checking"],
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8", "-o", "LogLevel=ERROR"]
    if ssh.get("known_hosts"):
        argv += ["-o", "UserKnownHostsFile=%s" % ssh["known_hosts"]]
    if ssh.get("private_key"):
        argv += ["-i", ssh["private_key"], "-o", "IdentitiesOnly=yes"]
    if ssh.get("proxy_command"):
        argv += ["-o", "ProxyCommand=%s" % ssh["proxy_command"]]
    return argv + ["-l", ssh["user"], "--", ssh["host"], remote_command]


def parse_facts(text):
    """The facts script's output -> dict(cpus, memory_kib, root, nics [(name, mac)], devices, tools, uid)."""
    out = dict(nics=[], devices=[])
    for line in text.splitlines():
        key, _sep, value = line.partition("=")
        if key == "cpus" and value.strip().isdigit():
            out["cpus"] = int(value)
        elif key == "memkib" and value.strip().isdigit():
            out["memory_kib"] = int(value)
        elif key == "root":
            out["root"] = value.strip() or None
        elif key == "nic":
            name, _sp, mac = value.strip().partition(" ")
            if re.match(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$", mac.strip().lower()):
                out["nics"].append((name, mac.strip().lower()))
        elif key in ("fsfreeze", "bash"):
            out[key] = value.strip() or None
        elif key == "uid" and value.strip().isdigit():
            out["uid"] = int(value)
        elif key == "lsblk":
            try:
                out["devices"] = json.loads(value).get("blockdevices", [])
            except ValueError:
                out["devices"] = []
    return out


def root_disk(facts):
    """The disk (TYPE disk) that holds the root filesystem, following partitions and device-mapper parents."""
    by_name = {d.get("kname") or d.get("name"): d for d in facts["devices"]}
    source = facts.get("root") or ""
    name = os.path.basename(source)
    for dev in facts["devices"]:
        if dev.get("mountpoint") == "/":
            name = dev.get("kname") or dev.get("name")
    seen = set()
    while name in by_name and name not in seen:
        seen.add(name)
        dev = by_name[name]
        if dev.get("type") == "disk":
            return name
        name = dev.get("pkname")
    return None


def disk_mounts(facts, disk):
    """Mounted, freezable filesystems on ``disk`` (its partitions, and what sits on them), deepest first."""
    children = {}
    for dev in facts["devices"]:
        children.setdefault(dev.get("pkname"), []).append(dev)
    mounts, todo = [], [disk]
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for dev in children.get(name, []):
            todo.append(dev.get("kname") or dev.get("name"))
    by_name = {d.get("kname") or d.get("name"): d for d in facts["devices"]}
    others = []
    for name in seen:
        dev = by_name.get(name, {})
        if dev.get("mountpoint") and dev.get("mountpoint") != "[SWAP]":
            (mounts if dev.get("fstype") in FREEZABLE else others).append(dev["mountpoint"])
    mounts.sort(key=lambda m: (m == "/", -m.count("/"), m))  # deepest first, the root filesystem last
    return mounts, sorted(others)


def stream_script(device, mounts, watchdog):
    """The remote shell script of the disk session (bash): freeze, stream with a digest, thaw.

    The digest reads the same bytes through a FIFO made before anything is frozen (in /run, a tmpfs, when
    it can); thawing also removes it, and runs on exit, on the watchdog, and after the copy."""
    q = shlex.quote
    thaw = "; ".join("fsfreeze -u %s 2>/dev/null" % q(m) for m in reversed(mounts))
    lines = ["set -u",
             "work=$(mktemp -d -p /run 2>/dev/null || mktemp -d) || exit 91",
             'mkfifo "$work/sum" || exit 91',
             "sha256sum < \"$work/sum\" | sed 's/^/virtforge-sha256=/' >&2 &",
             "summer=$!",
             'thaw() { %s rm -rf "$work"; }' % (thaw + ";" if thaw else ""),
             "trap thaw EXIT"]
    for mount in mounts:
        lines.append("fsfreeze -f %s || { echo 'virtforge: could not freeze %s' >&2; exit 90; }"
                     % (q(mount), mount.replace("'", "")))
    if mounts:
        lines.append("( sleep %d; thaw ) </dev/null >/dev/null 2>&1 &" % watchdog)
        lines.append("watchdog=$!")
    lines += ["direct=; [ -b %s ] && direct=iflag=direct" % q(device),
              'dd if=%s bs=4M $direct status=none | tee "$work/sum"' % q(device),
              "rc=${PIPESTATUS[0]}",
              "wait $summer",
              "thaw"]
    if mounts:
        lines.append("kill $watchdog 2>/dev/null")
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"


class RemoteSource(object):
    """A running Linux machine reached over SSH (the ``ssh`` option)."""

    def __init__(self, ssh, log):
        check_ssh_params(ssh)
        self.ssh = ssh
        self.log = log
        self.facts = None

    def _run(self, command, what, timeout=120):
        argv = ssh_argv(self.ssh, command)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise VirtforgeError("%s on %s did not answer within %d s" % (what, self.ssh["host"], timeout),
                                 option="ssh.host") from None
        err = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode == 255:
            raise VirtforgeError("cannot reach %s@%s over SSH: %s" % (self.ssh["user"], self.ssh["host"], err[-400:]),
                                 option="ssh.host",
                                 fix="Check the address, ssh.proxy_command, the key (ssh.private_key) and the "
                                     "host key (ssh.known_hosts / ssh.host_key_checking)")
        if proc.returncode != 0:
            raise VirtforgeError("%s on %s failed (exit %d): %s" % (what, self.ssh["host"], proc.returncode,
                                                                    err[-400:]), option="ssh")
        return proc.stdout.decode("utf-8", "replace")

    def gather(self):
        self.facts = parse_facts(self._run("sh -c %s" % shlex.quote(FACTS_SCRIPT), "reading the machine's facts"))
        return self.facts

    def disk(self, device, option):
        """(device path, size in bytes, mounts to freeze, other mounts) for ``device`` or the root disk."""
        facts = self.facts
        disks = {d.get("kname") or d.get("name"): d for d in facts["devices"] if d.get("type") == "disk"}
        if device:
            if not _DEVICE.match(device):
                raise VirtforgeError("%r is not a device path under /dev" % device, option=option)
            name = os.path.basename(device)
            if name not in disks:
                raise VirtforgeError("%s is not a disk of %s (its disks: %s)" % (
                    device, self.ssh["host"], ", ".join("/dev/" + d for d in sorted(disks)) or "none"),
                    option=option)
        else:
            name = root_disk(facts)
            if name is None or name not in disks:
                raise VirtforgeError("cannot tell which disk of %s holds / (root is %s)" % (
                    self.ssh["host"], facts.get("root")), option=option, fix="Name the disk in src, e.g. /dev/sda")
        mounts, others = disk_mounts(facts, name)
        return "/dev/" + name, int(disks[name].get("size") or 0), mounts, others

    def copy(self, device, size, mounts, dest, watchdog):
        """Stream ``device`` into ``dest`` (sparse); verify size and digest. Returns (bytes, seconds frozen)."""
        if not (self.facts or {}).get("bash"):
            raise VirtforgeError("%s has no bash (needed for the digest of the stream)" % self.ssh["host"],
                                 option="ssh.host")
        script = stream_script(device, mounts, watchdog)
        argv = ssh_argv(self.ssh, "bash -c %s" % shlex.quote(script))
        digest = hashlib.sha256()
        zero = bytes(CHUNK)
        total = 0
        started = time.monotonic()
        last = started
        with tempfile.TemporaryFile() as errfile, open(dest, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errfile)
            try:
                while True:
                    block = proc.stdout.read(CHUNK)
                    if not block:
                        break
                    digest.update(block)
                    if block == zero[:len(block)]:
                        out.seek(len(block), os.SEEK_CUR)
                    else:
                        out.write(block)
                    total += len(block)
                    now = time.monotonic()
                    if now - last >= 5:
                        last = now
                        self.log.line("copy: %d of %d MiB (%.0f MiB/s)" % (
                            total >> 20, size >> 20, (total >> 20) / max(now - started, 0.001)))
                out.truncate(total)
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            errfile.seek(0)
            err = errfile.read().decode("utf-8", "replace")
        seconds = round(time.monotonic() - started, 1)
        remote = re.search(r"virtforge-sha256=([0-9a-f]{64})", err)
        messages = "\n".join(line for line in err.splitlines() if "virtforge-sha256=" not in line).strip()
        if rc == 90:
            raise VirtforgeError("%s: %s" % (self.ssh["host"], messages[-300:]), option="consistency",
                                 fix="Use consistency: crash for a crash-consistent copy")
        if rc != 0:
            raise VirtforgeError("reading %s on %s failed (exit %d): %s"
                                 % (device, self.ssh["host"], rc, messages[-400:]), option="src")
        if total != size:
            raise VirtforgeError("the stream of %s ended after %d of %d bytes" % (device, total, size), option="src")
        if remote is None or remote.group(1) != digest.hexdigest():
            raise VirtforgeError("the copy of %s does not match the source (sha256 %s here, %s there)" % (
                device, digest.hexdigest(), remote.group(1) if remote else "missing"), option="src",
                fix="Run the conversion again; check the network path")
        self.log.line("copy: %d MiB in %.1f s, sha256 %s verified" % (total >> 20, seconds, digest.hexdigest()))
        return total, seconds, digest.hexdigest()
