# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_customize: offline customization of a disk image in one libguestfs appliance run.

The spec (hostname, identity reset, users, network, files, first-boot commands) is made canonical
and hashed. The hash and the masked spec are recorded inside the image in RECORD_PATH, and the hash
also as an extended attribute of the image file, so "already applied?" usually costs one getxattr
and at most one virt-cat run.

Changes are made in a temporary qcow2 overlay on top of the image and committed into it only when
virt-customize succeeded: a failure leaves the image as it was.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import time

from .._batch import expand
from .._errors import VirtforgeError
from .._validate import check_name, confine_path
from . import common
from .build import _HOSTNAME_RE, SSH_KEYS_UNIT
from .seed import SEED_SPEC, ensure_seed, validate_seed

RECORD_PATH = "/etc/virtforge/customize.json"
GUEST_SCRIPT = "/var/tmp/virtforge-customize.sh"
FIRSTBOOT_DIR = "/var/lib/virtforge/firstboot"
# Images from image_build: an MBR partition table with the root filesystem on the first partition.
ROOT_GUESS = "/dev/sda1"
XATTR = "user.virtforge.customize"
RECORD_VERSION = 1
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?$")
_OWNER_RE = re.compile(r"^([a-z_][a-z0-9_-]{0,31}|[0-9]+)$")
_KEY_RE = re.compile(r"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)"
                     r" [A-Za-z0-9+/=]+( [^\n\r]*)?$")
_MATCH_RE = re.compile(r"^[A-Za-z0-9_.:*?\[\]-]+$")
_MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")

USER_SPEC = dict(
    name=dict(type="str", required=True),
    groups=dict(type="list", elements="str", default=[]),
    shell=dict(type="str", default="/bin/bash"),
    uid=dict(type="int"),
    authorized_keys=dict(type="list", elements="str", default=[], no_log=False),
    password_hash=dict(type="str", no_log=True),
)
NETWORK_SPEC = dict(
    match=dict(type="str"),
    mac=dict(type="str"),
    dhcp=dict(type="bool"),
    addresses=dict(type="list", elements="str", default=[]),
    gateway=dict(type="str"),
    dns=dict(type="list", elements="str", default=[]),
)
FILE_SPEC = dict(
    path=dict(type="str", required=True),
    content=dict(type="str"),
    src=dict(type="path"),
    mode=dict(type="raw"),
    owner=dict(type="str"),
    group=dict(type="str"),
)
ARGUMENT_SPEC = dict(
    image=dict(type="path"),
    pool=dict(type="str"),
    volume=dict(type="str"),
    format=dict(type="str", choices=["qcow2", "raw"]),
    hostname=dict(type="str"),
    machine_id_reset=dict(type="bool", default=False),
    ssh_host_keys_regenerate=dict(type="bool", default=False),
    users=dict(type="list", elements="dict", options=USER_SPEC, default=[]),
    root_password=dict(type="str", no_log=True),
    network=dict(type="list", elements="dict", options=NETWORK_SPEC, default=[]),
    files=dict(type="list", elements="dict", options=FILE_SPEC, default=[]),
    firstboot_commands=dict(type="list", elements="str", default=[]),
    cloud_init_seed=dict(type="dict", options=SEED_SPEC),
    force=dict(type="bool", default=False),
    modify_with_clones=dict(type="bool", default=False),
    verify_record=dict(type="bool", default=False),
)
SECRET_KEYS = ("root_password", "password_hash")


def _bad(option, msg, fix=None):
    return VirtforgeError(msg, option=option, fix=fix)


def check_hostname(value, option="hostname"):
    if not isinstance(value, str) or not _HOSTNAME_RE.match(value):
        raise _bad(option, "%r is not a valid host name" % (value,),
                   "Use letters, digits and '-' in dot-separated labels of at most 63 characters (no spaces)")
    return value


def _file_mode(value, option):
    if value is None:
        return None
    if isinstance(value, bool):
        raise _bad(option, "%r is not a file mode" % (value,))
    if isinstance(value, int):
        mode = value
    elif isinstance(value, str) and re.match(r"^0?[0-7]{3,4}$", value.strip()):
        mode = int(value.strip(), 8)
    else:
        raise _bad(option, "%r is not an octal file mode" % (value,), "Quote it, e.g. '0644'")
    if not 0 <= mode <= 0o7777:
        raise _bad(option, "%r is not a file mode" % (value,))
    return "%04o" % mode


def _ip(value, option, network=False):
    try:
        return str(ipaddress.ip_interface(value) if network else ipaddress.ip_address(value))
    except ValueError:
        what = "address with a prefix (10.0.0.5/24)" if network else "address"
        raise _bad(option, "%r is not an IP %s" % (value, what)) from None


def spec_from_params(params):
    """The canonical customization: only what the user set, normalised; secrets as salted digests."""
    spec = {}
    if params.get("hostname") is not None:
        spec["hostname"] = check_hostname(params["hostname"])
    if params.get("machine_id_reset"):
        spec["machine_id_reset"] = True
    if params.get("ssh_host_keys_regenerate"):
        spec["ssh_host_keys_regenerate"] = True
    if params.get("root_password") is not None:
        spec["root_password"] = common.secret_digest(params["root_password"], "image_customize.root_password")
    users = []
    seen = set()
    for index, user in enumerate(params.get("users") or []):
        opt = "users[%d]" % index
        name = user.get("name")
        if not isinstance(name, str) or not _USER_RE.match(name):
            raise _bad(opt + ".name", "%r is not a valid user name" % (name,),
                       "Use lower-case letters, digits, '_' and '-', starting with a letter or '_'")
        if name in seen:
            raise _bad(opt + ".name", "user %r is listed twice" % name)
        seen.add(name)
        item = {"name": name}
        groups = []
        for gindex, group in enumerate(user.get("groups") or []):
            if not isinstance(group, str) or not _USER_RE.match(group):
                raise _bad("%s.groups[%d]" % (opt, gindex), "%r is not a valid group name" % (group,))
            groups.append(group)
        if groups:
            item["groups"] = sorted(set(groups))
        shell = user.get("shell") or "/bin/bash"
        if not shell.startswith("/") or re.search(r"\s", shell):
            raise _bad(opt + ".shell", "%r is not an absolute path" % shell)
        item["shell"] = shell
        if user.get("uid") is not None:
            if not 0 <= user["uid"] < 2 ** 31:
                raise _bad(opt + ".uid", "%r is out of range" % user["uid"])
            item["uid"] = user["uid"]
        keys = []
        for kindex, key in enumerate(user.get("authorized_keys") or []):
            key = (key or "").strip()
            if not _KEY_RE.match(key):
                raise _bad("%s.authorized_keys[%d]" % (opt, kindex), "is not an SSH public key line",
                           "Give the content of an id_*.pub file (one line: type, base64 key, comment)")
            keys.append(key)
        if keys:
            item["authorized_keys"] = keys
        if user.get("password_hash") is not None:
            value = user["password_hash"]
            if not value.startswith("$") or re.search(r"[:\s]", value):
                raise _bad(opt + ".password_hash", "is not a crypt(3) hash",
                           "Use e.g. {{ 'secret' | password_hash('sha512') }}")
            item["password_hash"] = common.secret_digest(value, "image_customize.password_hash")
        users.append(item)
    if users:
        spec["users"] = users
    networks = []
    for index, net in enumerate(params.get("network") or []):
        opt = "network[%d]" % index
        item = {}
        if net.get("mac"):
            mac = net["mac"].strip().lower()
            if not _MAC_RE.match(mac):
                raise _bad(opt + ".mac", "%r is not a MAC address" % net["mac"])
            item["mac"] = mac
        if net.get("match"):
            if not _MATCH_RE.match(net["match"]):
                raise _bad(opt + ".match", "%r is not an interface name pattern" % net["match"])
            item["match"] = net["match"]
        if "mac" not in item and "match" not in item:
            item["match"] = "en*"
        addresses = [_ip(a, "%s.addresses[%d]" % (opt, i), network=True)
                     for i, a in enumerate(net.get("addresses") or [])]
        if addresses:
            item["addresses"] = addresses
        dhcp = net.get("dhcp")
        item["dhcp"] = (not addresses) if dhcp is None else bool(dhcp)
        if not item["dhcp"] and not addresses:
            raise _bad(opt, "neither dhcp nor addresses is set", "Set dhcp: true or give addresses")
        if net.get("gateway"):
            item["gateway"] = _ip(net["gateway"], opt + ".gateway")
        dns = [_ip(a, "%s.dns[%d]" % (opt, i)) for i, a in enumerate(net.get("dns") or [])]
        if dns:
            item["dns"] = dns
        networks.append(item)
    if networks:
        spec["network"] = networks
    files = []
    for index, entry in enumerate(params.get("files") or []):
        opt = "files[%d]" % index
        path = common.check_absolute_path(entry.get("path"), opt + ".path")
        if ":" in path:
            raise _bad(opt + ".path", "%r contains ':'" % path)
        if (entry.get("content") is None) == (entry.get("src") is None):
            raise _bad(opt, "give exactly one of content and src")
        item = {"path": path}
        if entry.get("content") is not None:
            item["content_sha256"] = common.sha256_text(entry["content"])
        else:
            src = entry["src"]
            if not os.path.isfile(src):
                raise _bad(opt + ".src", "%s does not exist or is not a file" % src,
                           "src is a path on the host running the module")
            item["src"] = os.path.abspath(src)
            item["content_sha256"] = common.sha256_file(src)
        mode = _file_mode(entry.get("mode"), opt + ".mode")
        if mode:
            item["mode"] = mode
        for key in ("owner", "group"):
            if entry.get(key) is not None:
                if not _OWNER_RE.match(str(entry[key])):
                    raise _bad("%s.%s" % (opt, key), "%r is not a user/group name or id" % entry[key])
                item[key] = str(entry[key])
        files.append(item)
    if files:
        spec["files"] = files
    commands = []
    for index, command in enumerate(params.get("firstboot_commands") or []):
        if not isinstance(command, str) or not command.strip() or "\x00" in command:
            raise _bad("firstboot_commands[%d]" % index, "must be a non-empty command line")
        commands.append(command)
    if commands:
        spec["firstboot_commands"] = commands
    return spec


def spec_hash(spec):
    return common.canonical_hash(dict(spec, version=RECORD_VERSION))


def public_spec(spec):
    return common.mask_secrets(spec, SECRET_KEYS)


def make_record(spec, digest, now=None):
    return dict(tool="virtforge.libvirt.image_customize", version=RECORD_VERSION, sha256=digest,
                spec=public_spec(spec),
                applied=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))


def parse_record(text):
    """The record read back from an image: a dict with at least ``sha256``, or None if absent/foreign."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str) \
            or not re.match(r"^[0-9a-f]{64}$", data["sha256"]):
        return None
    if data.get("tool") != "virtforge.libvirt.image_customize":
        return None
    return data


def guestfish_read_script(device):
    """Mount ``device`` read-only and say whether it is a root filesystem and whether it has the record."""
    return "\n".join(["run", "mount-ro %s /" % device, "is-file /etc/fstab", "is-file %s" % RECORD_PATH,
                      "-cat %s" % RECORD_PATH, ""])


def parse_guestfish_read(out):
    """(has_record, text) from guestfish_read_script's output; None when the device is not a root filesystem."""
    lines = (out or "").split("\n", 2)
    if len(lines) < 2 or lines[0].strip() != "true":
        return None
    if lines[1].strip() != "true":
        return (False, None)
    return (True, lines[2] if len(lines) > 2 else "")


# -- the guest-side script -----------------------------------------------------------------

def networkd_unit(item):
    lines = ["# Written by virtforge.libvirt.image_customize", "[Match]"]
    if item.get("mac"):
        lines.append("MACAddress=%s" % item["mac"])
    if item.get("match"):
        lines.append("Name=%s" % item["match"])
    lines += ["", "[Network]", "DHCP=%s" % ("yes" if item["dhcp"] else "no")]
    for address in item.get("addresses", []):
        lines.append("Address=%s" % address)
    if item.get("gateway"):
        lines.append("Gateway=%s" % item["gateway"])
    for server in item.get("dns", []):
        lines.append("DNS=%s" % server)
    return "\n".join(lines) + "\n"


def _write(path, text, mode="0644"):
    q = shlex.quote
    return ["mkdir -p %s" % q(os.path.dirname(path)),
            "printf '%%s' %s > %s" % (q(text), q(path)),
            "chmod %s %s" % (mode, q(path))]


FIRSTBOOT_UNIT = """\
# Written by virtforge.libvirt: runs the scripts in %(dir)s once each, in order, at boot.
[Unit]
Description=virtforge first-boot commands
After=network.target
ConditionDirectoryNotEmpty=%(dir)s

[Service]
Type=oneshot
ExecStart=/usr/local/lib/virtforge/firstboot-run

[Install]
WantedBy=multi-user.target
""" % dict(dir=FIRSTBOOT_DIR)

FIRSTBOOT_RUNNER = """\
#!/bin/sh
# Written by virtforge.libvirt: run each first-boot script once; its output goes to the log.
mkdir -p %(dir)s-done
for script in %(dir)s/*.sh; do
  [ -e "$script" ] || continue
  echo "== $(date -u +%%FT%%TZ) $script" >> /var/log/virtforge-firstboot.log
  sh "$script" >> /var/log/virtforge-firstboot.log 2>&1 || echo "== exit $?" >> /var/log/virtforge-firstboot.log
  mv "$script" %(dir)s-done/
done
""" % dict(dir=FIRSTBOOT_DIR)


def firstboot_name(index, command):
    return "%02d-%s.sh" % (index, common.sha256_text(command)[:12])


def guest_script(spec, params, root_hash=None):
    """The shell script run inside the image. Secrets are only in this file (a private temporary
    directory on the host, removed from the image after the run), never on a command line.
    ``root_hash`` is the crypt(3) hash of the root password, made on the host."""
    q = shlex.quote
    out = ["#!/bin/sh", "# Generated by virtforge.libvirt.image_customize", "set -eu", "umask 022"]
    if "hostname" in spec:
        name = spec["hostname"]
        short = name.split(".")[0]
        names = name if short == name else "%s %s" % (name, short)
        out += _write("/etc/hostname", name + "\n")
        out += ["if [ -f /etc/hosts ]; then sed -i '/^127\\.0\\.1\\.1[[:space:]]/d' /etc/hosts; fi",
                "printf '127.0.1.1\\t%%s\\n' %s >> /etc/hosts" % q(names)]
    if spec.get("machine_id_reset"):
        out += [": > /etc/machine-id",
                "if [ -d /var/lib/dbus ]; then rm -f /var/lib/dbus/machine-id;"
                " ln -s /etc/machine-id /var/lib/dbus/machine-id; fi",
                "rm -f /var/lib/systemd/random-seed"]
    if spec.get("ssh_host_keys_regenerate"):
        unit = "/etc/systemd/system/virtforge-ssh-host-keys.service"
        out += ["rm -f /etc/ssh/ssh_host_*"]
        out += _write(unit, SSH_KEYS_UNIT)
        out += ["mkdir -p /etc/systemd/system/multi-user.target.wants",
                "ln -sf %s /etc/systemd/system/multi-user.target.wants/" % unit]
    raw_users = params.get("users") or []
    for index, user in enumerate(spec.get("users", [])):
        raw = raw_users[index]
        name = q(user["name"])
        groups = user.get("groups", [])
        for group in groups:
            out.append("getent group %s >/dev/null || groupadd %s" % (q(group), q(group)))
        create = ["useradd", "-m", "-s", q(user["shell"])]
        if "uid" in user:
            create += ["-u", str(user["uid"])]
        out.append("id -u %s >/dev/null 2>&1 || %s %s" % (name, " ".join(create), name))
        out.append("usermod -s %s %s" % (q(user["shell"]), name))
        if groups:
            out.append("usermod -a -G %s %s" % (q(",".join(groups)), name))
        if raw.get("password_hash"):
            out.append("usermod -p %s %s" % (q(raw["password_hash"]), name))
        if user.get("authorized_keys"):
            out += ['home=$(getent passwd %s | cut -d: -f6)' % name,
                    'mkdir -p "$home/.ssh"',
                    "printf '%%s' %s > \"$home/.ssh/authorized_keys\"" % q("\n".join(user["authorized_keys"]) + "\n"),
                    'chmod 0700 "$home/.ssh"', 'chmod 0600 "$home/.ssh/authorized_keys"',
                    'chown -R %s: "$home/.ssh"' % name]
    if "network" in spec:
        out.append("rm -f /etc/systemd/network/10-virtforge-*.network")
        for index, item in enumerate(spec["network"]):
            out += _write("/etc/systemd/network/10-virtforge-%02d.network" % index, networkd_unit(item))
        out.append("if [ -e /lib/systemd/system/systemd-networkd.service ]; then"
                   " systemctl enable systemd-networkd.service >/dev/null 2>&1 || true; fi")
    if root_hash:
        out.append("usermod -p %s root" % q(root_hash))
    for item in spec.get("files", []):
        out.append("chmod %s %s" % (item.get("mode", "0644"), q(item["path"])))
        if "owner" in item or "group" in item:
            out.append("chown %s:%s %s" % (q(item.get("owner", "")), q(item.get("group", "")), q(item["path"])))
    if spec.get("firstboot_commands"):
        out += _write("/etc/systemd/system/virtforge-firstboot.service", FIRSTBOOT_UNIT)
        out += _write("/usr/local/lib/virtforge/firstboot-run", FIRSTBOOT_RUNNER, mode="0755")
        out += ["mkdir -p /etc/systemd/system/multi-user.target.wants",
                "ln -sf /etc/systemd/system/virtforge-firstboot.service /etc/systemd/system/multi-user.target.wants/"]
        for index, command in enumerate(spec["firstboot_commands"]):
            out += _write("%s/%s" % (FIRSTBOOT_DIR, firstboot_name(index, command)), command + "\n", mode="0700")
    out.append("")
    return "\n".join(out)


def _gf_quote(text):
    """A guestfish argument in double quotes."""
    if "\n" in text or "\x00" in text:
        raise VirtforgeError("a path contains a newline", option="files")
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


def guestfish_apply_script(spec, work):
    """The guestfish commands of one customization run (the image is mounted by -m or -i).

    The previous record is copied out first (a missing one is not an error), then the files are
    uploaded, the guest script runs, and the new record is written last.
    """
    q = _gf_quote
    lines = ["stat /etc/fstab", "-copy-out %s %s" % (RECORD_PATH, q(os.path.join(work, "previous")))]
    for index, item in enumerate(spec.get("files", [])):
        parent = os.path.dirname(item["path"])
        if parent != "/":
            lines.append("mkdir-p %s" % q(parent))
        lines.append("upload %s %s" % (q(os.path.join(work, "file-%d" % index)), q(item["path"])))
    lines += ["mkdir-p /var/tmp",
              "upload %s %s" % (q(os.path.join(work, "script.sh")), GUEST_SCRIPT),
              "command \"/bin/sh %s\"" % GUEST_SCRIPT,
              "rm %s" % GUEST_SCRIPT,
              "mkdir-p %s" % os.path.dirname(RECORD_PATH),
              "upload %s %s" % (q(os.path.join(work, "record.json")), RECORD_PATH),
              "chmod 0644 %s" % RECORD_PATH,
              "sync",
              ""]
    return "\n".join(lines)


def detect_format(path):
    with open(path, "rb") as handle:
        return "qcow2" if handle.read(4) == common.QCOW2_MAGIC else "raw"


def backing_chain(path, limit=16):
    chain = [os.path.realpath(path)]
    current = path
    for _depth in range(limit):
        nxt = common.resolve_backing(current, common.qcow2_backing_file(current))
        if not nxt or nxt in chain:
            break
        chain.append(nxt)
        current = nxt
    return chain


class Customizer(object):
    def __init__(self, module, runner, params, connect=None):
        self.module = module
        self.runner = runner
        self.params = params
        self.connect = connect
        self.spec = spec_from_params(params)
        self.hash = spec_hash(self.spec)
        self.image = None
        self.missing = False
        if params.get("volume"):
            self.image = pool_volume_path(connect, params.get("pool"), params["volume"])
        elif params.get("image"):
            self.image = os.path.abspath(params["image"])
        if self.image:
            if not os.path.isfile(self.image):
                if not module.check_mode or os.path.exists(self.image):
                    raise _bad("volume" if params.get("volume") else "image",
                               "%s does not exist or is not a file" % self.image,
                               "Clone the golden image first (virtforge.libvirt.volume)")
                # In check mode an earlier task (a clone) would have made it.
                self.missing = True
        elif not params.get("cloud_init_seed"):
            raise _bad("image", "is required unless only cloud_init_seed is given")
        elif set(self.spec) - {"hostname"}:
            # Without an image, hostname only feeds the seed's local-hostname.
            raise _bad("image", "is required to apply %s" % ", ".join(sorted(set(self.spec) - {"hostname"})))
        if params.get("cloud_init_seed"):
            validate_seed(params["cloud_init_seed"], self.spec.get("hostname"))
        self.timings = {}

    # -- reading the record ----------------------------------------------------------------
    def recorded_hash_xattr(self):
        try:
            return os.getxattr(self.image, XATTR).decode("ascii")
        except (OSError, AttributeError, UnicodeDecodeError):
            return None

    def read_record(self, fmt):
        """The record inside the image, read-only, in one appliance run.

        Images from image_build have their root filesystem on the first partition: guestfish mounts it
        directly (about 15 s under TCG). For other layouts, virt-cat's OS inspection finds the root
        (about 40 s).
        """
        env = common.guestfs_env()
        started = time.monotonic()
        try:
            rc, out, _err = self.runner.run(
                [self.runner.which("guestfish"), "--ro", "--format=%s" % fmt, "-a", self.image],
                data=guestfish_read_script(ROOT_GUESS).encode(), check=False, environ=env)
            found = parse_guestfish_read(out) if rc == 0 else None
            if found is not None:
                return parse_record(found[1]) if found[0] else None
            tool = self.runner.which("virt-cat")
            rc, out, err = self.runner.run([tool, "--format", fmt, "-a", self.image, RECORD_PATH], check=False,
                                           environ=env)
        finally:
            self.timings["read_record"] = round(time.monotonic() - started, 1)
        if rc == 0:
            return parse_record(out)
        text = (err or "") + (out or "")
        if "No such file or directory" in text:
            return None
        last = (text.strip().splitlines() or ["?"])[-1]
        raise VirtforgeError("cannot read %s from %s: %s" % (RECORD_PATH, self.image, last),
                             option="image", fix="Is it a disk image with an operating system on it?")

    # -- safety ------------------------------------------------------------------------------
    def check_not_in_use(self):
        """Refuse when a running domain uses the image (directly or through its backing chain)."""
        if self.params.get("force") or self.connect is None:
            return
        conn = self.connect()
        from .._libvirt import etree
        target = os.path.realpath(self.image)
        for dom in conn.listAllDomains(1):  # VIR_CONNECT_LIST_DOMAINS_ACTIVE
            root = etree.fromstring(dom.XMLDesc(0).encode())
            for disk in root.findall("./devices/disk"):
                source = disk.find("source")
                if source is None:
                    continue
                path = source.get("file") or source.get("dev")
                if path is None and source.get("pool") and source.get("volume"):
                    try:
                        path = conn.storagePoolLookupByName(source.get("pool")).storageVolLookupByName(
                            source.get("volume")).path()
                    except Exception:  # pylint: disable=broad-except
                        path = None
                if path and target in backing_chain(path):
                    raise VirtforgeError(
                        "%s is in use by the running domain %s (disk %s)" % (
                            self.image, dom.name(), path), option="image",
                        fix="Stop the domain first, or set force: true if you know what you are doing")

    def check_no_clones(self):
        if self.params.get("modify_with_clones"):
            return
        directories = {os.path.dirname(self.image)}
        if self.connect is not None:
            directories.update(common.pool_directories(self.connect()))
        clones = common.dependent_images(self.image, sorted(directories))
        if clones:
            raise VirtforgeError(
                "%s is the backing file of %d image(s) (%s): changing it would corrupt them" % (
                    self.image, len(clones), ", ".join(clones[:3]) + (" ..." if len(clones) > 3 else "")),
                option="image", fix="Customize the clones instead, or set modify_with_clones: true")

    # -- run ---------------------------------------------------------------------------------
    def run(self, check_mode):
        result = dict(changed=False, image=self.image, customization_sha256=self.hash,
                      spec=public_spec(self.spec), changes=[], timings=self.timings)
        if self.missing:
            self.module.warn("%s does not exist yet; check mode assumes an earlier task creates it" % self.image)
            result.update(changed=True, previous_sha256=None)
            result["changes"].append(dict(path=RECORD_PATH, action="customize", before=None, after=self.hash))
        elif self.image and self.spec:
            self._run_image(result, check_mode)
        seed_spec = self.params.get("cloud_init_seed")
        if seed_spec:
            seed = ensure_seed(self.runner, seed_spec, self.spec.get("hostname"), check_mode)
            result["seed"] = seed
            if seed["changed"]:
                result["changed"] = True
                result["changes"].append(dict(path="cloud_init_seed", action="write",
                                              before=seed["previous_sha256"], after=seed["sha256"]))
        return result

    def _run_image(self, result, check_mode):
        fmt = self.params.get("format") or detect_format(self.image)
        result["diff"] = dict(before_header="%s:%s" % (self.image, RECORD_PATH),
                              after_header="%s:%s" % (self.image, RECORD_PATH),
                              after=dict(sha256=self.hash, spec=public_spec(self.spec)))
        if not self.params.get("verify_record") and self.recorded_hash_xattr() == self.hash:
            self._record_result(result, dict(sha256=self.hash, spec=public_spec(self.spec)), "xattr")
            return
        if check_mode:
            recorded = self.read_record(fmt)
            self._record_result(result, recorded, "image")
            if result["changed"]:
                self.check_safe()   # predicts the real run's refusal
            return
        try:
            self.check_safe()
        except VirtforgeError:
            # Unsafe to write; fine if there is nothing to write.
            recorded = self.read_record(fmt)
            self._record_result(result, recorded, "image")
            if result["changed"]:
                raise
            self._set_xattr()
            return
        # One appliance run: the previous record is copied out first, the changes go to an overlay
        # that is committed only if the previous record differs from this spec.
        self.apply(fmt, result)
        self._set_xattr()

    def _record_result(self, result, recorded, source):
        before = recorded.get("sha256") if recorded else None
        result["previous_sha256"] = before
        result["record_source"] = source
        result["diff"]["before"] = dict(sha256=before, spec=(recorded or {}).get("spec"))
        if before != self.hash:
            result["changed"] = True
            result["changes"].append(dict(path=RECORD_PATH, action="customize", before=before, after=self.hash))

    def check_safe(self):
        self.check_not_in_use()
        self.check_no_clones()

    def _set_xattr(self):
        try:
            os.setxattr(self.image, XATTR, self.hash.encode("ascii"))
        except (OSError, AttributeError):
            pass  # a filesystem without user xattrs: the record inside the image still answers

    def root_password_hash(self):
        """SHA-512 crypt of the root password, made on this host (openssl reads it from stdin)."""
        if self.params.get("root_password") is None:
            return None
        _rc, out, _err = self.runner.run([self.runner.which("openssl"), "passwd", "-6", "-stdin"],
                                         data=(self.params["root_password"] + "\n").encode(),
                                         what="openssl passwd")
        return out.strip()

    def apply(self, fmt, result):
        tools = common.require_tools(self.runner, ["guestfish", "qemu-img"])
        env = common.guestfs_env()
        # Secrets go to files in a private directory; the directory is removed whatever happens.
        with common.temp_dir(os.path.dirname(self.image), ".vf-customize-") as work:
            os.chmod(work, 0o700)
            raw_files = self.params.get("files") or []
            for index in range(len(self.spec.get("files", []))):
                raw = raw_files[index]
                dest = os.path.join(work, "file-%d" % index)
                if raw.get("content") is not None:
                    with open(dest, "w") as handle:
                        handle.write(raw["content"])
                else:
                    with open(raw["src"], "rb") as src, open(dest, "wb") as out:
                        out.write(src.read())
            with open(os.path.join(work, "script.sh"), "w") as handle:
                handle.write(guest_script(self.spec, self.params, self.root_password_hash()))
            with open(os.path.join(work, "record.json"), "w") as handle:
                json.dump(make_record(self.spec, self.hash), handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.mkdir(os.path.join(work, "previous"))
            overlay = os.path.join(work, "overlay.qcow2")
            self.runner.run([tools["qemu-img"], "create", "-q", "-f", "qcow2", "-b", self.image, "-F", fmt,
                             overlay], what="qemu-img create (overlay)")
            script = guestfish_apply_script(self.spec, work).encode()
            started = time.monotonic()
            try:
                base = [tools["guestfish"], "--format=qcow2", "-a", overlay]
                rc, _out, err = self.runner.run(base + ["-m", ROOT_GUESS], data=script, environ=env, check=False)
                if rc != 0 and not os.listdir(os.path.join(work, "previous")) and _mount_failed(err):
                    # Not the image_build layout: let libguestfs find the root filesystem.
                    self.runner.run(base + ["-i"], data=script, environ=env, what="guestfish")
                elif rc != 0:
                    raise VirtforgeError("guestfish failed (exit %d): %s" % (rc, "\n".join(
                        (err or "").strip().splitlines()[-10:])), option="image")
            finally:
                self.timings["customize"] = round(time.monotonic() - started, 1)
            previous = os.path.join(work, "previous", os.path.basename(RECORD_PATH))
            recorded = None
            if os.path.exists(previous):
                with open(previous) as handle:
                    recorded = parse_record(handle.read())
            self._record_result(result, recorded, "image")
            if not result["changed"]:
                return  # the overlay is dropped: the image is untouched
            started = time.monotonic()
            self.runner.run([tools["qemu-img"], "commit", "-q", "-f", "qcow2", overlay],
                            what="qemu-img commit")
            self.timings["commit"] = round(time.monotonic() - started, 1)


def _mount_failed(err):
    """guestfish could not mount the guessed root, or it was not a root filesystem (is-file /etc/fstab)."""
    text = err or ""
    return "mount" in text or "stat: /etc/fstab" in text


def pool_volume_path(connect, pool, volume):
    """The file of ``volume`` in the file-backed storage ``pool`` (confined to the pool's directory)."""
    if not pool:
        raise _bad("pool", "is required with volume")
    check_name(volume, option="volume")
    if connect is None:
        raise _bad("pool", "needs a libvirt connection")
    conn = connect()
    import libvirt  # pylint: disable=import-outside-toplevel
    try:
        xml = conn.storagePoolLookupByName(pool).XMLDesc(0)
    except libvirt.libvirtError:
        raise _bad("pool", "no storage pool named %r" % pool, "Create it first (virtforge.libvirt.pool)") from None
    target = re.search(r"<target>\s*<path>([^<]+)</path>", xml)
    if not target:
        raise _bad("pool", "pool %r has no target directory (only file-backed pools hold images)" % pool)
    return confine_path(volume, target.group(1), "volume")


def run_module(module, runner, connect=None):
    """One image (the module's own options) or a list of them (``images``), each run in turn.

    Every item is validated (and its image resolved) before any image is changed.
    """
    items = expand(module, "images", dict(ARGUMENT_SPEC, images=dict(type="list", elements="dict")),
                   not_shared=("image", "volume", "hostname"))
    if items is None:
        return Customizer(module, runner, module.params, connect=connect).run(module.check_mode)
    from .._batch import ItemView  # pylint: disable=import-outside-toplevel
    customizers = []
    for index, params in enumerate(items):
        try:
            view = ItemView(module, params)
            customizers.append(Customizer(view, runner, params, connect=connect))
        except VirtforgeError as exc:
            exc.option = "images[%d].%s" % (index, exc.option) if exc.option else "images[%d]" % index
            raise
    results = [c.run(module.check_mode) for c in customizers]
    out = dict(changed=any(r["changed"] for r in results), images=results)
    diffs = [r.pop("diff", None) for r in results]
    if any(diffs):
        out["diff"] = [d or {} for d in diffs]
    return out
