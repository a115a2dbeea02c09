# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libvirt connection every module shares: import guard, ``uri`` option, host facts."""

from __future__ import annotations

import os
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ._errors import VirtforgeError

LIBVIRT_IMPORT_ERROR = None
try:
    import libvirt
except ImportError:  # pragma: no cover - depends on the host
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

LXML_IMPORT_ERROR = None
try:
    from lxml import etree  # noqa: F401  (re-exported for the engines)
except ImportError:  # pragma: no cover - depends on the host
    etree = None
    LXML_IMPORT_ERROR = traceback.format_exc()

DEFAULT_URI = "qemu:///system"

# Every libvirt module takes these (see doc_fragments/libvirt.py).
CONNECTION_ARGSPEC = dict(
    uri=dict(type="str", fallback=(env_fallback, ["LIBVIRT_DEFAULT_URI"])),
)


def check_libraries(module, need_libvirt=True):
    """Fail cleanly when lxml or libvirt-python is missing on the managed host."""
    if etree is None:
        module.fail_json(msg=missing_required_lib("lxml"), exception=LXML_IMPORT_ERROR)
    if need_libvirt and libvirt is None:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=LIBVIRT_IMPORT_ERROR)


def _silence(_ctx, _err):
    """libvirt prints every error on stderr by default; errors reach us as exceptions instead."""


def connect(uri=None, readonly=False):
    """Open one connection for the whole task. ``uri`` None means the default URI."""
    if libvirt is None:
        raise VirtforgeError(missing_required_lib("libvirt-python"))
    libvirt.registerErrorHandler(_silence, None)
    uri = uri or DEFAULT_URI
    try:
        conn = libvirt.openReadOnly(uri) if readonly else libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise VirtforgeError(
            "cannot connect to %s: %s" % (uri, exc.get_error_message()), option="uri",
            fix="Check that libvirtd runs and that the URI is right (default %s)" % DEFAULT_URI) from None
    if conn is None:  # pragma: no cover - old bindings
        raise VirtforgeError("cannot connect to %s" % uri, option="uri")
    return conn


def module_connection(module, readonly=False):
    return connect(module.params.get("uri"), readonly=readonly)


def is_local_uri(uri):
    uri = uri or DEFAULT_URI
    if "://" not in uri:
        return True
    scheme, rest = uri.split("://", 1)
    return "+" not in scheme and (rest.startswith("/") or rest == "")


def cpu_virtualization_flags(cpuinfo="/proc/cpuinfo"):
    """True when this machine's CPU flags include vmx (VT-x) or svm (AMD-V); None if unreadable."""
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "vmx" in flags or "svm" in flags
    except OSError:
        return None
    return False


def host_hardware_virtualization(conn, uri=None, cpuinfo="/proc/cpuinfo"):
    """True when the libvirt host can run KVM guests with hardware virtualization.

    /dev/kvm can exist without usable VT-x/AMD-V (nested setups, emulated CPUs), so for
    a local URI the CPU flags decide; for a remote one, libvirt's capabilities do.
    """
    if is_local_uri(uri) and os.path.exists(cpuinfo):
        if cpu_virtualization_flags(cpuinfo) is False:
            return False
        if not os.path.exists("/dev/kvm"):
            return False
    caps = etree.fromstring(conn.getCapabilities().encode())
    return bool(caps.xpath("./guest/arch/domain[@type='kvm']"))


def choose_domain_type(conn, uri=None, requested=None, warn=None):
    """``kvm`` when the host supports it, else ``qemu`` (TCG) with a warning."""
    if requested:
        return requested
    if host_hardware_virtualization(conn, uri):
        return "kvm"
    if warn is not None:
        warn("The host has no usable hardware virtualization (no vmx/svm CPU flag or no KVM); "
             "using domain type 'qemu' (software emulation, slow). Set domain_type to override.")
    return "qemu"


# The collection's own domain metadata (tags, image, profile): one element in libvirt's
# <metadata>, set and read with virDomainSetMetadata/virDomainGetMetadata.
#   <vf:instance xmlns:vf="urn:virtforge:libvirt:1"><vf:tag>web</vf:tag>...</vf:instance>
METADATA_NS = "urn:virtforge:libvirt:1"
METADATA_PREFIX = "vf"
METADATA_ROOT = "instance"
