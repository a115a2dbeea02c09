#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: domain
short_description: Create, modify, start, stop and remove libvirt domains, one or many per task
version_added: 0.1.0
description:
  - Declarative libvirt domains. Only the options you set are compared with the existing domain,
    in canonical form (sizes in bytes, MAC addresses in lower case); what libvirt fills in by itself
    (PCI addresses, controllers, aliases) never causes a change.
  - One domain (O(name) and its options) or a list of domains (O(domains)) in one task over one
    connection. Every domain is planned before anything is changed, so bad input fails before
    anything is created or deleted. Check mode stops after the plan; diff mode shows the XML before and after.
  - The persistent definition is always updated. Changes that a running domain can take
    (vCPUs and memory up to their maximum, disk and NIC hot-plug, title, description, tags) are also
    applied live; others set RV(restart_required) and are applied by a restart only with O(allow_restart=true).
  - Defaults such as one vCPU, 512 MiB, a serial console, a guest agent channel and no graphics are
    used only when a domain is created; on an existing domain an option you do not set is left alone.
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
  - virtforge.libvirt.libvirt.attributes
attributes:
  idempotent:
    support: full
    description: A second run with the same options reports no change.
options:
  name:
    description:
      - Name of the domain. Letters, digits and C(. _ - + :) only.
      - Required unless O(domains) is used or O(xml) carries a C(<name>).
    type: str
  domains:
    description:
      - A list of domains handled in this one task over one connection. Each item takes the same
        options as the module itself (O(name), O(state), O(vcpus), O(memory), O(disks), ...), except
        O(domains) and O(uri).
      - Options set at the top level are defaults for every item (except O(name), O(uuid) and O(xml));
        an item's own value wins. Lists such as O(disks) replace the top-level list, they are not merged.
      - Waits (stopping, O(wait_for)) overlap across the batch.
      - An item may be just a domain name, which then takes the top-level options (a profile of
        settings applied to many domains).
    type: list
    elements: raw
  state:
    description:
      - V(present) the domain is defined (a running domain is left running).
      - V(running), V(paused), V(stopped) it is defined and in that state. Stopping is graceful
        (ACPI shutdown, then up to O(shutdown_timeout) seconds) and forced only with O(force_stop=true).
      - V(absent) it is stopped (same rules) and undefined. Its disks are removed only with O(remove_storage=true).
    type: str
    choices: [present, running, stopped, paused, absent]
    default: present
  uuid:
    description: UUID of a new domain. An existing domain's UUID cannot be changed.
    type: str
  title:
    description: Short one-line title. An empty string removes it. Applied live.
    type: str
  description:
    description: Free text description. An empty string removes it. Applied live.
    type: str
  domain_type:
    description:
      - V(kvm) or V(qemu) (software emulation).
      - When not set, a new domain gets V(kvm) only where the host has usable hardware virtualization
        (vmx/svm CPU flag and KVM), otherwise V(qemu) and a warning.
    type: str
    choices: [kvm, qemu]
  vcpus:
    description:
      - Number of vCPUs the domain runs with (default 1 for a new domain).
      - Raised or lowered live up to O(max_vcpus); above the current maximum the maximum is raised too,
        which needs a restart.
    type: int
  max_vcpus:
    description: Maximum number of vCPUs (hot-plug limit). Defaults to O(vcpus). Needs a restart.
    type: int
  cpu_mode:
    description:
      - CPU model mode. Not written unless set (QEMU's default CPU), which is the safe choice under
        software emulation where V(host-passthrough) and V(host-model) may not work.
    type: str
    choices: [host-model, host-passthrough, custom, maximum]
  cpu_model:
    description: CPU model name for O(cpu_mode=custom), for example V(qemu64). Implies O(cpu_mode=custom).
    type: str
  memory:
    description:
      - Memory the domain runs with. An integer is MiB; strings take units (V(512MiB), V(2G), V(1GiB)).
      - Default 512 MiB for a new domain. Changed live (balloon) up to O(max_memory); above it the
        maximum is raised too, which needs a restart.
    type: raw
  max_memory:
    description: Maximum memory (libvirt C(<memory>)), same units as O(memory). Defaults to O(memory). Needs a restart.
    type: raw
  cputune:
    description:
      - CPU scheduling and placement of the guest (libvirt C(<cputune>)). Only the keys given are managed.
      - On a running domain every key is applied live (cgroup CPU controller and CPU affinity of the QEMU
        threads, as C(virsh schedinfo), C(vcpupin) and C(emulatorpin) do) and written to the definition.
    type: dict
    suboptions:
      shares:
        description: Relative CPU weight against other guests (2-262144; libvirt's default is 1024).
        type: int
      period:
        description: CFS period for each vCPU in microseconds (1000-1000000).
        type: int
      quota:
        description:
          - CFS quota for each vCPU in microseconds per O(cputune.period) (1000-17592186044415), -1 for no cap.
          - O(cputune.quota)/O(cputune.period) is the share of one host CPU a vCPU may use (50000/100000 = half).
        type: int
      emulator_period:
        description: CFS period of the QEMU emulator threads (microseconds).
        type: int
      emulator_quota:
        description: CFS quota of the QEMU emulator threads (microseconds), -1 for no cap.
        type: int
      global_period:
        description: CFS period of the whole domain (microseconds).
        type: int
      global_quota:
        description: CFS quota of the whole domain (microseconds), -1 for no cap.
        type: int
      vcpu_pins:
        description:
          - Pin vCPUs to host CPUs, a mapping of vCPU number to a host CPU set in libvirt's syntax
            (V('0-3,^2'), V('5')). The mapping is the whole pinning layout, V({}) removes every pin.
          - vCPU numbers must be below O(max_vcpus); host CPUs must exist on the host.
        type: dict
      emulator_pin:
        description: Host CPU set for the QEMU emulator threads, e.g. V('0').
        type: str
  memtune:
    description:
      - Memory cgroup limits of the QEMU process (libvirt C(<memtune>)), sizes as for O(memory) or V(unlimited).
      - Applied live on a running domain. O(memtune.hard_limit) must be above the guest's memory (QEMU needs
        memory of its own beyond the guest's), otherwise the module refuses it.
    type: dict
    suboptions:
      hard_limit:
        description: Most memory the guest's QEMU process may use.
        type: raw
      soft_limit:
        description: Memory the process is pushed back to when the host is short of memory.
        type: raw
      swap_hard_limit:
        description: Most memory plus swap; at least O(memtune.hard_limit).
        type: raw
  numatune:
    description:
      - Host NUMA nodes the guest's memory is taken from (libvirt C(<numatune>)). Needs a restart.
    type: dict
    suboptions:
      mode:
        description: V(strict) fails when the nodes run out, V(preferred) falls back, V(interleave) spreads pages.
        type: str
        choices: [strict, preferred, interleave, restrictive]
      nodeset:
        description: Host NUMA nodes, e.g. V('0') or V('0-1').
        type: str
  memory_backing:
    description:
      - How guest memory is backed (libvirt C(<memoryBacking>)). Needs a restart.
      - A guest on hugepages only starts when the host has enough free ones; the module warns at define time.
    type: dict
    suboptions:
      hugepages:
        description: Back the guest's memory with hugepages.
        type: bool
      hugepage_size:
        description: Hugepage size, e.g. V(2MiB) or V(1GiB); implies O(memory_backing.hugepages). Default the host's.
        type: raw
      locked:
        description: Lock the guest's memory in host RAM (never swapped); pair it with O(memtune.hard_limit).
        type: bool
  arch:
    description: Guest architecture, for example V(x86_64). Default chosen by libvirt for a new domain.
    type: str
  machine:
    description:
      - Machine type, for example V(pc) or V(q35). Aliases are compared with the canonical name
        libvirt stores (V(pc) matches V(pc-i440fx-7.2)).
    type: str
  firmware:
    description:
      - V(bios) or V(efi) (libvirt's firmware auto-selection; needs OVMF on the host). Needs a restart.
    type: str
    choices: [bios, efi]
  secure_boot:
    description:
      - UEFI Secure Boot with the usual keys enrolled. V(true) asks libvirt's firmware auto-selection for
        a build with Secure Boot and enrolled keys (Debian and Ubuntu hosts - C(OVMF_CODE_4M.ms.fd) with the
        Microsoft keys, which sign the shim that Linux distributions boot through), turns SMM on, and
        implies O(firmware=efi). It needs a q35 machine; a new domain without O(machine) gets one.
      - V(false) asks for firmware without Secure Boot.
      - Needs a restart. A domain that already has a UEFI variable store keeps it, and with it the keys it
        had; start it once with C(virsh start --reset-nvram) to make a new store from the new firmware's
        template (its boot entries are lost).
    type: bool
  boot:
    description: Boot order, a list of V(hd), V(cdrom), V(network), V(fd). Default V([hd]) for a new domain.
    type: list
    elements: str
  disks:
    description:
      - Disks and CD-ROMs, identified by their target device (O(disks[].dev)).
      - Disks already defined but not listed are kept unless O(purge_disks=true).
      - Disks on the V(virtio), V(scsi) and V(usb) buses are hot-plugged into a running domain;
        others, and changes to an existing disk (except O(disks[].iotune)), need a restart.
    type: list
    elements: dict
    suboptions:
      dev:
        description:
          - Target device name (V(vda), V(sdb), V(hdc)). When omitted, the next free name of the bus
            is taken in the order of the list (V(vd*) for virtio, V(sd*) for sata/scsi/usb, V(hd*) for ide).
        type: str
      path:
        description: Absolute path of the image file or block device. Must exist for a local V(disk).
        type: path
      pool:
        description: Storage pool of O(disks[].volume) (instead of O(disks[].path)).
        type: str
      volume:
        description: Volume name in O(disks[].pool). It must exist; the disk points at its path.
        type: str
      format:
        description:
          - Image format. When omitted for a new disk, taken from the pool volume, or from the image
            header (qcow2 magic), else V(raw).
        type: str
        choices: [qcow2, raw]
      bus:
        description: Disk bus. Default V(virtio) for disks, V(sata) for CD-ROMs.
        type: str
        choices: [virtio, sata, scsi, ide, usb]
      device:
        description:
          - V(disk) (default), V(cdrom) or V(lun). A CD-ROM may have no O(disks[].path) (empty drive).
          - V(lun) passes a host SCSI LUN through (SCSI commands such as persistent reservations reach the
            real device; the guest sees its physical format). It needs O(disks[].path) of a host block device
            (C(/dev/...)), format V(raw) and bus V(scsi) (the default for a LUN); an image file is refused.
            A LUN pins the domain to hosts that see the same LUN.
        type: str
        choices: [disk, cdrom, lun]
      sgio:
        description:
          - For O(disks[].device=lun), whether the host filters unprivileged SCSI commands (V(filtered)).
          - V(unfiltered) is refused with libvirt 9.0 or newer, which no longer supports it.
        type: str
        choices: [filtered, unfiltered]
      reservations:
        description:
          - For O(disks[].device=lun), let libvirt manage SCSI persistent reservations
            (C(<reservations managed='yes'/>), qemu-pr-helper).
        type: bool
      readonly:
        description: Read-only disk (CD-ROMs always are).
        type: bool
      cache:
        description: Host cache mode.
        type: str
        choices: [default, none, writethrough, writeback, directsync, unsafe]
      io:
        description: I/O mode.
        type: str
        choices: [native, threads, io_uring]
      discard:
        description: Pass discard (TRIM) requests to the image (V(unmap)) or not (V(ignore)).
        type: str
        choices: [unmap, ignore]
      serial:
        description: Serial number the guest sees (1-36 of letters, digits, space, C(_ . + -)). Needs a restart.
        type: str
      wwn:
        description:
          - World Wide Name the guest sees, 16 hexadecimal digits (disks on the V(scsi) or V(ide) bus only).
          - Two SCSI disks with one WWN on one O(disks[].path) (and O(disks[].shareable)) are two paths to one
            LUN in the guest, as dm-multipath sees them. Needs a restart.
        type: str
      shareable:
        description:
          - The image may be used by more than one disk or domain at once (C(<shareable/>); QEMU opens it with
            C(share-rw)). Only raw images; with O(disks[].cache=none) writers see each other's data. Needs a restart.
        type: bool
      iotune:
        description:
          - I/O limits of the disk (QEMU throttling). Values must be greater than 0; leave a key out for no limit.
            The limits given replace all earlier ones (V({}) removes every limit).
          - A C(total_*) limit and the C(read_*)/C(write_*) limits of the same unit exclude each other.
          - Changed on a running domain without a restart (C(virDomainSetBlockIoTune)) and kept in the definition.
        type: dict
        suboptions:
          total_bytes_sec:
            description: Sustained limit in bytes per second.
            type: int
          read_bytes_sec:
            description: Sustained limit in bytes per second.
            type: int
          write_bytes_sec:
            description: Sustained limit in bytes per second.
            type: int
          total_iops_sec:
            description: Sustained limit in I/O operations per second.
            type: int
          read_iops_sec:
            description: Sustained limit in I/O operations per second.
            type: int
          write_iops_sec:
            description: Sustained limit in I/O operations per second.
            type: int
          total_bytes_sec_max:
            description: Burst limit (at least the sustained one, which it needs).
            type: int
          read_bytes_sec_max:
            description: Burst limit (at least the sustained one, which it needs).
            type: int
          write_bytes_sec_max:
            description: Burst limit (at least the sustained one, which it needs).
            type: int
          total_iops_sec_max:
            description: Burst limit (at least the sustained one, which it needs).
            type: int
          read_iops_sec_max:
            description: Burst limit (at least the sustained one, which it needs).
            type: int
          write_iops_sec_max:
            description: Burst limit (at least the sustained one, which it needs).
            type: int
  purge_disks:
    description: Remove disks that are defined but not listed in O(disks). The image files are kept.
    type: bool
  interfaces:
    description:
      - Network interfaces, identified by MAC address (compared in lower case).
      - Without O(interfaces[].mac), a stable MAC is derived from the domain name and the NIC's position
        in the list (prefix V(52:54:00)), the same on every run.
      - Interfaces already defined but not listed are kept unless O(purge_interfaces=true).
      - New interfaces are hot-plugged into a running domain; changes to an existing one need a restart,
        except O(interfaces[].bandwidth) and O(interfaces[].app_qos).
    type: list
    elements: dict
    suboptions:
      mac:
        description: MAC address (unicast).
        type: str
      type:
        description:
          - Interface type. Deduced from O(interfaces[].network), O(interfaces[].bridge),
            O(interfaces[].direct) or O(interfaces[].pci) (V(hostdev)) when omitted.
        type: str
        choices: [network, bridge, user, direct, hostdev]
      network:
        description:
          - libvirt network to attach to. It must exist.
          - On a network with C(forward=hostdev) (a pool of SR-IOV VFs, see
            O(virtforge.libvirt.network#module:pf)), the guest gets a VF of its own.
        type: str
      pci:
        description:
          - An SR-IOV virtual function given to the guest as this NIC (C(<interface type='hostdev'>), VFIO,
            managed), by PCI address (V(0000:03:10.1)). libvirt sets the VF's MAC (and O(interfaces[].vlan)) on
            the PF. The VF goes through the same IOMMU group check as O(hostdevs[].pci).
          - Not with O(interfaces[].model), O(interfaces[].bandwidth) or O(interfaces[].app_qos) (the VF is
            hardware). Pass-through pins the domain to its host (not migratable).
        type: str
      vlan:
        description: VLAN tag (1-4094) the PF puts on the VF's traffic. Only with O(interfaces[].pci).
        type: int
      iommu_check:
        description:
          - With O(interfaces[].pci), V(false) skips the IOMMU group check (with a warning), to define a domain
            before its host has the hardware.
        type: bool
      bridge:
        description: Host bridge to attach to.
        type: str
      direct:
        description: Host interface for a macvtap (C(direct)) interface, mode bridge.
        type: str
      model:
        description: NIC model. Default V(virtio).
        type: str
        choices: [virtio, e1000e, e1000, rtl8139]
      bandwidth:
        description:
          - Rate limits of the NIC (libvirt C(<bandwidth>), shaped on the host side). Values must be greater
            than 0; C(peak) and C(burst) need C(average). The limits given replace all earlier ones
            (V({}) removes every limit).
          - Changed on a running domain without a restart (C(virDomainSetInterfaceParameters)) and kept in
            the definition.
        type: dict
        suboptions:
          inbound:
            description: Traffic to the guest.
            type: dict
            suboptions:
              average:
                description: Average rate in KiB/s.
                type: int
              peak:
                description: Peak rate in KiB/s (at least O(interfaces[].bandwidth.inbound.average)).
                type: int
              burst:
                description: KiB that may be sent at peak rate.
                type: int
              floor:
                description: Guaranteed rate in KiB/s; only on a libvirt network with QoS (C(bandwidth) of the network).
                type: int
          outbound:
            description: Traffic from the guest.
            type: dict
            suboptions:
              average:
                description: Average rate in KiB/s.
                type: int
              peak:
                description: Peak rate in KiB/s (at least O(interfaces[].bandwidth.outbound.average)).
                type: int
              burst:
                description: KiB that may be sent at peak rate.
                type: int
      app_qos:
        description:
          - Per-application traffic classes inside this NIC - a guaranteed rate and a ceiling per application,
            chosen by TCP or UDP port - realised with tc HTB classes on the NIC's host-side tap (traffic to the
            guest) and on an IFB device fed by the tap's ingress (traffic from the guest).
          - A class takes packets whose source or destination port is one of its ports (IPv4 and IPv6);
            unmatched traffic shares what the classes do not reserve. Classes may borrow up to their ceiling.
          - Kept in the domain's metadata; applied at once to a running domain (tc runs in the network namespace
            of the domain's QEMU process; only for this machine's QEMU driver) and rebuilt at every start by the
            libvirt hook that M(virtforge.libvirt.qos_hook) installs. V({}) removes the classes.
          - Not with O(interfaces[].bandwidth) on the same side (both would shape the tap); only for NICs with a
            tap (V(network), V(bridge)). See docs/devices.md.
        type: dict
        suboptions:
          link:
            description:
              - The NIC's total rate, shared between the classes, e.g. V(1gbit).
              - Rates take tc's units - V(bit), V(kbit), V(mbit), V(gbit) (bits/s, powers of 1000) or V(bps),
                V(kbps), V(mbps) (bytes/s); a bare number is kbit/s.
            type: raw
          direction:
            description: Shape traffic to the guest (V(inbound)), from it (V(outbound)) or V(both).
            type: str
            choices: [both, inbound, outbound]
            default: both
          classes:
            description: The applications. Their rates together must not exceed O(interfaces[].app_qos.link).
            type: list
            elements: dict
            suboptions:
              name:
                description: Name of the class (1-32 letters, digits, C(.), C(_), C(-)).
                type: str
                required: true
              ports:
                description: The application's ports; a port belongs to one class per protocol.
                type: list
                elements: int
                required: true
              protocol:
                description: Transport protocol of the ports.
                type: str
                choices: [tcp, udp]
                default: tcp
              rate:
                description: Guaranteed rate.
                type: raw
                required: true
              ceil:
                description: Most the class may use by borrowing unused bandwidth; default the link rate.
                type: raw
              priority:
                description: 0 (served first when borrowing) to 7.
                type: int
                default: 4
  purge_interfaces:
    description: Remove interfaces that are defined but not listed in O(interfaces).
    type: bool
  controllers:
    description:
      - Controllers of type V(scsi), V(sata), V(usb), V(virtio-serial) and V(pci), identified by type and index.
        Controllers libvirt adds by itself (PCI, the default USB controller) are never compared unless listed.
      - SCSI and virtio-serial controllers are hot-plugged into a running domain; others need a restart.
      - V(pci) controllers give a domain room for hot-plugged devices (a running guest cannot get new ones) -
        spare PCIe root ports on q35 (V(pcie-root-port)), PCI bridges on i440fx (V(pci-bridge)). libvirt fills
        the indexes below a PCI controller's with root ports, so one item with index N gives all ports up to N.
        O(purge_controllers) never removes PCI controllers (they carry the other devices).
      - Before a hot-plug the module counts the running domain's free PCI slots (free root ports on q35, free
        slots of the root bus and bridges on i440fx) and refuses a task that adds more PCI devices than fit,
        changing nothing; the message says which index gives enough room.
    type: list
    elements: dict
    suboptions:
      type:
        description: Controller type.
        type: str
        choices: [scsi, sata, usb, virtio-serial, pci]
      index:
        description:
          - Controller index (0..255), default 0. Disks on that bus use controller 0 unless addressed.
          - For V(pci), above 0 (the root bus, which libvirt manages).
        type: int
      model:
        description:
          - V(virtio-scsi) (default) or V(lsilogic) for SCSI; V(qemu-xhci) (default), V(nec-xhci), V(ich9-ehci1),
            V(piix3-uhci) or V(none) for USB; V(pcie-root-port) (default), V(pci-bridge) or V(pcie-to-pci-bridge)
            for PCI; none for SATA and virtio-serial.
        type: str
        choices: [virtio-scsi, lsilogic, qemu-xhci, nec-xhci, ich9-ehci1, piix3-uhci, none, pcie-root-port,
                  pci-bridge, pcie-to-pci-bridge]
  purge_controllers:
    description: Remove SCSI, SATA, USB and virtio-serial controllers that are defined but not listed.
    type: bool
  rngs:
    description:
      - Paravirtual random number generators (virtio-rng) fed from a host source, identified by that source.
        Hot-plugged into a running domain.
    type: list
    elements: dict
    suboptions:
      model:
        description: Device model. Default V(virtio).
        type: str
        choices: [virtio, virtio-transitional, virtio-non-transitional]
      backend:
        description: Host entropy source. Default V(/dev/urandom).
        type: str
        choices: [/dev/urandom, /dev/random, /dev/hwrng]
      rate_bytes:
        description: At most this many bytes per O(rngs[].rate_period) (greater than 0).
        type: int
      rate_period:
        description: Period of O(rngs[].rate_bytes) in milliseconds (libvirt's default 1000).
        type: int
  purge_rngs:
    description: Remove RNG devices that are defined but not listed.
    type: bool
  watchdogs:
    description:
      - Emulated watchdogs, identified by model, and what happens when the guest stops feeding one.
        Need a restart.
    type: list
    elements: dict
    suboptions:
      model:
        description: Watchdog model. Default V(i6300esb) (PCI, x86).
        type: str
        choices: [i6300esb, ib700, diag288, itco]
      action:
        description: Action when the watchdog fires. Default V(reset).
        type: str
        choices: [reset, shutdown, poweroff, pause, none, dump, inject-nmi]
  purge_watchdogs:
    description: Remove watchdogs that are defined but not listed.
    type: bool
  hostdevs:
    description:
      - Host devices passed through to the guest (libvirt C(<hostdev mode='subsystem'>)), each naming exactly one of
        O(hostdevs[].pci), O(hostdevs[].usb) or O(hostdevs[].mdev), and identified by that host-side source.
      - PCI and USB devices are hot-plugged into a running domain; mediated devices and changes of O(hostdevs[].managed)
        need a restart.
      - "A PCI device is refused unless its whole IOMMU group can be given to a guest: every other member of the group
        must be bound to C(vfio-pci), C(pci-stub) or no driver, be a PCI bridge, or be listed in O(hostdevs) too. It
        is also refused when it does not exist or the IOMMU is off. The check reads this machine's sysfs, so it runs
        only when O(uri) is a local QEMU/KVM connection; otherwise it is skipped with a warning."
    type: list
    elements: dict
    suboptions:
      pci:
        description:
          - A PCI function passed through with VFIO, as C(lspci -D) prints it, V(0000:03:00.1) (V(03:00.1) means
            domain V(0000)).
        type: str
      usb:
        description: A USB device, by O(hostdevs[].usb.vendor) and O(hostdevs[].usb.product), or by
          O(hostdevs[].usb.bus) and O(hostdevs[].usb.device).
        type: dict
        suboptions:
          vendor:
            description: Vendor id, V(0x) and 4 hex digits as C(lsusb) shows it (ID 046d:c52b is V('0x046d')). Quote it
              in YAML.
            type: str
          product:
            description: Product id, for example V('0xc52b').
            type: str
          bus:
            description: USB bus number (C(lsusb) Bus 001 is V(1)). It changes when the device is plugged elsewhere.
            type: int
          device:
            description: USB device number on that bus (1..127).
            type: int
      mdev:
        description: UUID of a mediated device (vGPU, s390 subchannel or crypto queue), as in C(/sys/bus/mdev/devices).
        type: str
      model:
        description: VFIO API of a mediated device. Default V(vfio-pci). Only with O(hostdevs[].mdev).
        type: str
        choices: [vfio-pci, vfio-ccw, vfio-ap]
      managed:
        description:
          - For PCI and USB, default V(true) - libvirt detaches the device from its host driver (binds a PCI device to
            C(vfio-pci)) when the guest starts and gives it back when it stops.
          - V(false) leaves binding to you; a PCI device must then already be bound to C(vfio-pci).
        type: bool
      iommu_check:
        description:
          - V(false) skips the IOMMU group check of this PCI device, with a warning, to define a domain for hardware
            this host does not have yet. libvirt still refuses to start the domain until it can assign the device.
          - Default V(true).
        type: bool
  purge_hostdevs:
    description: Remove PCI, USB and mediated host devices that are defined but not listed (other hostdevs are kept).
    type: bool
  balloon:
    description:
      - The memory balloon device (libvirt C(<memballoon>)). Its size is O(memory), changed live.
      - O(balloon.stats_period) is changed on a running domain; the other keys take effect at the next start.
    type: dict
    suboptions:
      model:
        description: V(virtio) (libvirt's default for new domains) or V(none) for no balloon.
        type: str
        choices: [virtio, virtio-transitional, virtio-non-transitional, none]
      stats_period:
        description: Seconds between the guest's memory statistics reports (C(virsh dommemstat)), 0 for none.
        type: int
      autodeflate:
        description: Let the guest take memory back from the balloon when it runs out (OOM).
        type: bool
      free_page_reporting:
        description: The guest reports free pages, which the host reclaims.
        type: bool
  tpm:
    description:
      - A TPM for the guest (libvirt C(<tpm>)), e.g. for measured boot, BitLocker or LUKS sealed to the TPM.
      - V(emulator) runs swtpm on the host (package C(swtpm)); its state (keys) lives on the host and is kept
        when the domain is removed unless O(remove_storage=true). V(passthrough) hands over the host's TPM.
      - Changes take effect at the next start.
    type: dict
    suboptions:
      enabled:
        description: V(false) removes the TPM.
        type: bool
        default: true
      model:
        description: V(tpm-crb) (TPM 2.0, default), V(tpm-tis), or V(spapr-tpm-proxy) (POWER).
        type: str
        choices: [tpm-crb, tpm-tis, spapr-tpm-proxy]
      backend:
        description: V(emulator) (default) or V(passthrough).
        type: str
        choices: [emulator, passthrough]
      version:
        description: TPM version of the emulator, V(2.0) (default) or V(1.2).
        type: str
        choices: ["2.0", "1.2"]
      device:
        description: The host TPM for V(passthrough), default V(/dev/tpm0).
        type: path
  iommu:
    description:
      - A virtual IOMMU in the guest (libvirt C(<iommu>)); the guest's PCI devices get IOMMU groups, so VFIO or
        DPDK can run inside it, or it can pass devices on to its own guests (a nested KVM host).
      - The guest's kernel must turn it on (C(intel_iommu=on)). Changes take effect at the next start.
    type: dict
    suboptions:
      enabled:
        description: V(false) removes the IOMMU.
        type: bool
        default: true
      model:
        description: V(intel) (default; needs O(machine=q35)), V(amd), V(virtio) or V(smmuv3) (Arm).
        type: str
        choices: [intel, smmuv3, virtio, amd]
      intremap:
        description:
          - Interrupt remapping (intel). Writes the split I/O APIC (C(<features><ioapic driver='qemu'/>)) it needs.
        type: bool
      caching_mode:
        description: Caching mode (intel); needed when the guest assigns devices to its own guests with VFIO.
        type: bool
      eim:
        description: Extended interrupt mode (intel; needs O(iommu.intremap)), for more than 255 vCPUs.
        type: bool
      iotlb:
        description: Device IOTLB (intel), for vhost devices behind the IOMMU.
        type: bool
      aw_bits:
        description: Address width in bits (intel), V(39) or V(48).
        type: int
        choices: [39, 48]
  serial_console:
    description: A serial port on a pty with the console on it (V(true) for a new domain). Needs a restart.
    type: bool
  guest_agent:
    description: The QEMU guest agent channel (V(true) for a new domain). Needs a restart.
    type: bool
  graphics:
    description: V(none) (default for a new domain), V(vnc) or V(spice). Needs a restart.
    type: str
    choices: [none, vnc, spice]
  graphics_listen:
    description: Address VNC/SPICE listens on. Default V(127.0.0.1) (local only).
    type: str
  tags:
    description:
      - Tags stored in the collection's own domain metadata (read by C(domain_info) and the inventory
        plugin for groups). The list replaces the domain's tags (compared as a set). Applied live.
    type: list
    elements: str
  autostart:
    description: Start the domain when libvirtd starts.
    type: bool
  xml:
    description:
      - A full libvirt domain XML used as the base of a new domain; the other options are applied on top.
      - On an existing domain, the features the module knows (see the options above) are read from this
        XML and compared like options; other elements are only used when the domain is created.
      - Malformed XML fails before anything is changed.
    type: str
  allow_restart:
    description:
      - Restart a running domain (graceful shutdown, O(force_stop) rules, start) to apply changes that
        cannot be applied live. Otherwise they are in the definition and RV(restart_required) is V(true).
    type: bool
    default: false
  force_stop:
    description:
      - Power the domain off when it has not shut down after O(shutdown_timeout) seconds.
        Otherwise the task fails.
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds to wait for a graceful (ACPI) shutdown.
    type: int
    default: 120
  wait_for:
    description:
      - After starting, wait until the guest agent answers (V(agent)) and/or the guest has an IP address
        (V(ip), from the guest agent, else the network's DHCP leases). Only for O(state=running).
    type: list
    elements: str
    choices: [agent, ip]
  wait_timeout:
    description: Seconds to wait for O(wait_for).
    type: int
    default: 300
  remove_storage:
    description:
      - With O(state=absent), also delete the domain's writable disk images (pool volumes or local files).
      - An image that another volume uses as its backing file, or that another domain uses, is kept
        (RV(kept_storage), with a warning). CD-ROMs and read-only disks are never deleted.
      - The UEFI variable store (NVRAM) and the vTPM state (keys, sealed secrets) are deleted only with
        O(remove_storage=true) too; otherwise libvirt keeps them.
    type: bool
    default: false
seealso:
  - module: virtforge.libvirt.domain_info
  - module: virtforge.libvirt.volume
notes:
  - Only graceful shutdown is used unless O(force_stop=true); a guest without an operating system
    (or without ACPI support) never shuts down gracefully.
"""

EXAMPLES = r"""
- name: A small domain on a qcow2 volume, running
  virtforge.libvirt.domain:
    name: web1
    vcpus: 1
    memory: 512MiB
    disks:
      - pool: default
        volume: web1.qcow2
    interfaces:
      - network: default
    tags: [web, prod]
    state: running
    wait_for: [agent]

- name: Three domains in one task, shared defaults at the top level
  virtforge.libvirt.domain:
    memory: 1G
    state: running
    interfaces:
      - network: default
    domains:
      - name: app1
        disks: [{path: /var/lib/libvirt/images/app1.qcow2}]
      - name: app2
        disks: [{path: /var/lib/libvirt/images/app2.qcow2}]
      - name: db1
        memory: 4G
        vcpus: 2
        disks: [{path: /var/lib/libvirt/images/db1.qcow2}]

- name: More vCPUs and memory live, within the maxima
  virtforge.libvirt.domain:
    name: web1
    vcpus: 2
    max_vcpus: 4
    memory: 1G
    max_memory: 2G
    allow_restart: true   # raising the maxima needs one restart

- name: Split one NIC between applications (SAP 100 Mb/s, Exchange 70, backup 30), changeable live
  virtforge.libvirt.domain:
    name: app1
    interfaces:
      - network: default
        app_qos:
          link: 200mbit
          classes:
            - {name: sap, ports: [3200, 3300], rate: 100mbit, priority: 1}
            - {name: exchange, ports: [443, 25], rate: 70mbit, priority: 2}
            - {name: backup, ports: [10000], rate: 30mbit, ceil: 200mbit, priority: 6}

- name: Night profile for a batch VM, live - more CPU weight, two pinned vCPUs, a memory cap
  virtforge.libvirt.domain:
    name: batch1
    cputune:
      shares: 4096
      quota: -1
      vcpu_pins: {0: "2", 1: "3"}
      emulator_pin: "0-1"
    memtune:
      hard_limit: 6GiB
      soft_limit: 4GiB

- name: A database guest on 1 GiB hugepages from NUMA node 0 (applied at the next start)
  virtforge.libvirt.domain:
    name: db1
    memory_backing:
      hugepage_size: 1GiB
    numatune:
      mode: strict
      nodeset: "0"
    allow_restart: true

- name: Pass a GPU and its audio function (one IOMMU group) and a USB receiver through
  virtforge.libvirt.domain:
    name: gpu1
    hostdevs:
      - pci: "0000:03:00.0"
      - pci: "0000:03:00.1"
      - usb: {vendor: "0x046d", product: "0xc52b"}
    state: running

- name: Define a guest for a card that is not in this host yet (not started; the IOMMU check is skipped)
  virtforge.libvirt.domain:
    name: nic-spare
    vcpus: 2
    memory: 2GiB
    hostdevs:
      - pci: "0000:81:00.0"
        iommu_check: false
    state: present

- name: A vGPU (mediated device) in the definition, every other pass-through device removed
  virtforge.libvirt.domain:
    name: desk1
    hostdevs:
      - mdev: 4b20d080-1b54-4048-85b3-a6a62d165c01
        model: vfio-pci
    purge_hostdevs: true
    allow_restart: true

- name: Stop, powering off after 60 s if the guest ignores the shutdown request
  virtforge.libvirt.domain:
    name: web1
    state: stopped
    shutdown_timeout: 60
    force_stop: true

- name: Remove a domain and its disks (backing images of other volumes are kept)
  virtforge.libvirt.domain:
    name: web1
    state: absent
    force_stop: true
    remove_storage: true
"""

RETURN = r"""
changed:
  description: Whether anything changed (or would change in check mode).
  returned: always
  type: bool
changes:
  description:
    - Every change, for all domains. C(path) is C(group.key) or C(group[item key]); C(action) is add, update,
      remove or state (start, shutdown, restart, undefine...); C(live) tells whether it was applied live.
  returned: always
  type: list
  elements: dict
  sample: [{domain: web1, path: cpu.vcpus, action: update, before: 1, after: 2, live: true}]
restart_required:
  description: Whether some domain has changes in its definition that need a restart to take effect.
  returned: always
  type: bool
domain:
  description: The domain, when O(name) is used.
  returned: when O(domains) is not used
  type: dict
  contains:
    name:
      description: Domain name.
      type: str
    state:
      description: State after the task (predicted in check mode).
      type: str
      sample: running
    uuid:
      description: UUID.
      type: str
    type:
      description: Domain type (kvm or qemu).
      type: str
    changed:
      description: Whether this domain changed.
      type: bool
    changes:
      description: This domain's changes (as in RV(changes)).
      type: list
      elements: dict
    restart_required:
      description: Whether this domain needs a restart for changes to take effect.
      type: bool
    pending_restart:
      description: Changes already in the definition that the running domain does not have yet.
      type: list
      elements: str
    ip_addresses:
      description:
        - Guest IP addresses, when O(wait_for) includes V(ip) - the same entries as
          M(virtforge.libvirt.domain_info) returns (C(address), C(prefix), C(family), C(mac), C(interface),
          C(network), C(source) V(lease) or V(agent), C(hostname)); the guest agent's when it answers, else
          the DHCP leases (which may still hold an earlier guest's lease for a reused MAC).
      type: list
      elements: dict
      sample: [{address: 192.168.122.57, prefix: 24, family: ipv4, mac: "52:54:00:6b:3c:58", interface: vnet0,
                network: null, source: lease, hostname: null}]
    agent:
      description: Whether the guest agent answered, when O(wait_for) includes V(agent).
      type: bool
domains:
  description: One entry per item of O(domains), in order, with the keys of RV(domain).
  returned: when O(domains) is used
  type: list
  elements: dict
kept_storage:
  description: Images not deleted by O(remove_storage) and why (C(path), C(reason)).
  returned: with O(state=absent) and O(remove_storage=true), single domain (per item in RV(domains))
  type: list
  elements: dict
removed_storage:
  description: Images deleted (or that would be in check mode).
  returned: with O(state=absent) and O(remove_storage=true), single domain (per item in RV(domains))
  type: list
  elements: str
timing:
  description: Seconds spent per phase (connect, plan, define, stop, undefine, start, pause, wait).
  returned: always
  type: dict
  sample: {connect: 0.05, plan: 0.2, define: 1.1, start: 24.8}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.manager import run_module
from ansible_collections.virtforge.libvirt.plugins.module_utils._domain.spec import module_argument_spec
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._libvirt import check_libraries


def main():
    module = AnsibleModule(argument_spec=module_argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("name", "domains"), ("xml", "domains")])
    check_libraries(module)
    try:
        result = run_module(module)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
