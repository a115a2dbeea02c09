# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-application traffic classes on a guest NIC, realised with tc (HTB classes, u32 port filters).

Standard library only: this file is also the libvirt hook script (``qos_hook`` installs it as
/etc/libvirt/hooks/qemu.d/virtforge-qos). libvirt runs the hook with the domain's XML on stdin
whenever a domain starts; the hook reads the classes the ``domain`` module stored in the domain's
metadata and builds the tc tree on each NIC's host-side tap. The ``domain`` module uses the same
functions to change the tree of a running guest.

Directions, seen from the guest:

* ``inbound`` (to the guest): an HTB tree on the tap's egress.
* ``outbound`` (from the guest): the tap's ingress is redirected to an IFB device (``vfq`` + the
  NIC's MAC in hex), which carries the HTB tree. Named by the MAC, which the collection keeps unique
  on a host, it can be found again when the domain stops (libvirt forgets tap names by then).

A class matches TCP or UDP packets whose source **or** destination port is one of its ports (the
application's server port, whichever side opened the connection), over IPv4 and IPv6. Traffic no
class matches goes to a default class with what the other classes do not reserve.
"""

from __future__ import absolute_import, division, print_function

import subprocess
import sys

# Where the domain module keeps the classes: <metadata><vf:instance><vf:qos mac=...>.
METADATA_NS = "urn:virtforge:libvirt:1"
DIRECTIONS = ("inbound", "outbound")
PROTOCOLS = dict(tcp=6, udp=17)
ROOT_CLASS = "1:1"
DEFAULT_MINOR = 0xFFFF
FIRST_MINOR = 0x10
IFB_PREFIX = "vfq"


def ifb_name(mac):
    """IFB device for a NIC's outbound tree: ``vfq`` + 12 hex digits = 15, the most a name may have."""
    return IFB_PREFIX + mac.lower().replace(":", "")[-12:]


def _quantum(rate_bits):
    """HTB quantum in bytes: rate/10 bounded to [MTU, 200000] (what tc would clamp to, without warnings)."""
    return int(min(max(rate_bits // 8 // 10, 1514), 200000))


def htb_commands(dev, qos):
    """tc argument lists building the HTB tree of ``qos`` (canonical dict) on ``dev``, from scratch."""
    link = qos["link"]
    reserved = sum(c["rate"] for c in qos["classes"])
    default_rate = max(link - reserved, 8000)
    cmds = [
        ["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "%x" % DEFAULT_MINOR],
        ["tc", "class", "replace", "dev", dev, "parent", "1:", "classid", ROOT_CLASS, "htb",
         "rate", "%dbit" % link, "ceil", "%dbit" % link, "quantum", str(_quantum(link))],
    ]
    pref = 1
    for index, cls in enumerate(qos["classes"]):
        classid = "1:%x" % (FIRST_MINOR + index)
        cmds.append(["tc", "class", "replace", "dev", dev, "parent", ROOT_CLASS, "classid", classid, "htb",
                     "rate", "%dbit" % cls["rate"], "ceil", "%dbit" % cls["ceil"], "prio", str(cls["priority"]),
                     "quantum", str(_quantum(cls["rate"]))])
        proto = str(PROTOCOLS[cls["protocol"]])
        for port in cls["ports"]:
            for side in ("sport", "dport"):
                cmds.append(["tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", str(pref),
                             "u32", "match", "ip", "protocol", proto, "0xff", "match", "ip", side, str(port), "0xffff",
                             "flowid", classid])
                cmds.append(["tc", "filter", "add", "dev", dev, "parent", "1:", "protocol", "ipv6",
                             "prio", str(pref + 1), "u32", "match", "ip6", "protocol", proto, "0xff",
                             "match", "ip6", side, str(port), "0xffff", "flowid", classid])
        pref += 2
    cmds.append(["tc", "class", "replace", "dev", dev, "parent", ROOT_CLASS, "classid", "1:%x" % DEFAULT_MINOR,
                 "htb", "rate", "%dbit" % default_rate, "ceil", "%dbit" % link, "prio", "7",
                 "quantum", str(_quantum(default_rate))])
    return cmds


def apply_commands(tap, mac, qos):
    """Everything to run, in order, to give NIC ``mac`` on ``tap`` exactly the classes of ``qos`` (None: none).

    ``tap`` None: the NIC has no tap any more (detached); only its IFB device is removed.

    Each step is ``(argv, may_fail)``: removing what may not be there is allowed to fail.
    """
    steps = [] if tap is None else [(["tc", "qdisc", "del", "dev", tap, "root"], True),
                                    (["tc", "qdisc", "del", "dev", tap, "ingress"], True)]
    steps.append((["ip", "link", "del", ifb_name(mac)], True))
    if not qos or not qos.get("classes") or tap is None:
        return steps
    if qos["direction"] in ("inbound", "both"):
        steps.extend((cmd, False) for cmd in htb_commands(tap, qos))
    if qos["direction"] in ("outbound", "both"):
        ifb = ifb_name(mac)
        steps.extend([
            (["ip", "link", "add", ifb, "type", "ifb"], False),
            (["ip", "link", "set", ifb, "up"], False),
        ])
        steps.extend((cmd, False) for cmd in htb_commands(ifb, qos))
        steps.extend([
            (["tc", "qdisc", "add", "dev", tap, "handle", "ffff:", "ingress"], False),
            (["tc", "filter", "add", "dev", tap, "parent", "ffff:", "protocol", "all", "prio", "1", "u32",
              "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb], False),
        ])
    return steps


class TcError(Exception):
    pass


def run_steps(steps, prefix=None, runner=None):
    """Run the steps (argv lists, never a shell), each optionally prefixed (``nsenter --net=...``)."""
    runner = runner or _run
    for argv, may_fail in steps:
        full = list(prefix or []) + argv
        rc, out, err = runner(full)
        if rc != 0 and not may_fail:
            raise TcError("%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out).strip()))


def _run(argv):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ------------------------------------------------------------------ metadata (shared with the module)
def qos_from_element(node):
    """Canonical qos dict from a <vf:qos> element (namespaced or, as libvirt hands it, plain)."""
    classes = []
    for cls in node:
        if not isinstance(cls.tag, str) or cls.tag.split("}")[-1] != "class":
            continue
        classes.append(dict(
            name=cls.get("name"), protocol=cls.get("protocol", "tcp"),
            ports=[int(p) for p in cls.get("ports", "").split(",") if p],
            rate=int(cls.get("rate")), ceil=int(cls.get("ceil")), priority=int(cls.get("priority", "4")),
        ))
    return dict(direction=node.get("direction", "both"), link=int(node.get("link")), classes=classes)


def domain_qos(root):
    """{mac: qos} stored in a domain's metadata, and {mac: tap} of its NICs (live XML only has taps)."""
    qos, taps = {}, {}
    for node in root.iter("{%s}qos" % METADATA_NS):
        qos[node.get("mac").lower()] = qos_from_element(node)
    for nic in root.iterfind("devices/interface"):
        mac, target = nic.find("mac"), nic.find("target")
        if mac is not None and target is not None and target.get("dev"):
            taps[mac.get("address").lower()] = target.get("dev")
    return qos, taps


# ------------------------------------------------------------------ the libvirt hook
def hook_main(argv, stdin, stderr):
    """/etc/libvirt/hooks/qemu.d/virtforge-qos NAME OPERATION SUB-OPERATION EXTRA, domain XML on stdin.

    ``started``: build the classes on the new taps; ``stopped``: remove the IFB devices of the old ones.
    """
    if len(argv) < 3 or argv[2] not in ("started", "stopped"):
        return 0
    from xml.etree import ElementTree
    try:
        root = ElementTree.fromstring(stdin.read())
        qos, taps = domain_qos(root)
        if argv[2] == "stopped":
            # the taps are gone with the guest; its IFB devices are not
            run_steps([(["ip", "link", "del", ifb_name(mac)], True) for mac in sorted(qos)])
            return 0
        for mac, wanted in sorted(qos.items()):
            tap = taps.get(mac)
            if tap is None:
                stderr.write("virtforge-qos: %s: NIC %s has no tap; classes not applied\n" % (argv[1], mac))
                continue
            run_steps(apply_commands(tap, mac, wanted))
            stderr.write("virtforge-qos: %s: %d class(es) on %s\n" % (argv[1], len(wanted["classes"]), tap))
    except Exception as exc:  # never stop a guest from starting; libvirt logs stderr
        stderr.write("virtforge-qos: %s: %s\n" % (argv[1], exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(hook_main(sys.argv, sys.stdin, sys.stderr))
