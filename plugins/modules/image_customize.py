#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_customize
short_description: Customize a disk image offline with libguestfs (hostname, identity, users, network, files)
version_added: 0.1.0
description:
  - Customizes a disk image (typically a linked clone of a golden image) without booting it, in one
    libguestfs appliance run (C(guestfish)) - host name, machine-id reset, SSH host keys regenerated at
    first boot, users with SSH keys, root password, systemd-networkd network configuration, files, and
    commands run once at first boot.
  - The customization is made canonical and hashed. The hash and the spec (secrets masked) are recorded
    inside the image in C(/etc/virtforge/customize.json), and the hash also as the extended attribute
    C(user.virtforge.customize) of the image file. The same spec reports no change; reading the record
    costs nothing when the attribute matches, and one read-only libguestfs run otherwise (check mode).
  - A real run is one libguestfs run whether or not the spec is already applied, when the attribute does not
    answer (the previous record is copied out of the image in the same run).
  - Changes are written to a temporary qcow2 overlay and committed into the image only when everything
    succeeded, so a failure leaves the image unchanged.
  - Customization is additive. Re-running with a different spec applies the new spec on top; files and
    users dropped from the spec are not removed. Network files written by this module
    (C(/etc/systemd/network/10-virtforge-*.network)) are replaced as a whole.
  - Refuses to change an image that a running domain uses (directly or as a backing file), unless
    O(force); and an image that other images use as their backing file (a golden image with linked
    clones), unless O(modify_with_clones).
  - Optionally writes a cloud-init NoCloud seed ISO (O(cloud_init_seed)) for images that carry cloud-init.
  - Without hardware virtualization libguestfs is run with E(LIBGUESTFS_BACKEND_SETTINGS=force_tcg);
    an appliance run then takes about 35 to 60 seconds.
author:
  - virtforge.libvirt contributors (@virtforge)
extends_documentation_fragment:
  - virtforge.libvirt.libvirt
options:
  image:
    description:
      - Path of the disk image to customize (qcow2 or raw), on the machine running the module.
      - Required unless O(volume) or O(images) is given, or only O(cloud_init_seed).
      - In check mode, a missing image is reported as one that would be customized (with a warning),
        so that a play that clones it in an earlier task can be checked as a whole.
    type: path
  pool:
    description:
      - Storage pool of O(volume); the image is the file of the volume in the target directory of the pool.
    type: str
  volume:
    description:
      - Volume name (file name) of the image in O(pool), instead of O(image).
    type: str
  images:
    description:
      - Several images in one task. Each item takes the options of the module itself (O(image) or
        O(pool) and O(volume), O(hostname), O(users), ...), except O(images) and O(uri).
      - Options set at the top level are defaults for every item, except O(image), O(volume) and
        O(hostname); an item's own value wins.
      - Every item is validated before any image is changed. The result then has RV(images).
      - An unchanged image costs one C(getxattr) (the applied customization's hash), so a batch of
        clones that are already customized is checked in milliseconds.
    type: list
    elements: dict
  format:
    description: Image format. Detected from the file when not set.
    type: str
    choices: [qcow2, raw]
  hostname:
    description: Host name, written to C(/etc/hostname) and as the C(127.0.1.1) line of C(/etc/hosts).
    type: str
  machine_id_reset:
    description:
      - Empty C(/etc/machine-id) (and point C(/var/lib/dbus/machine-id) at it) so systemd generates a new one
        at first boot. Also removes systemd's random seed.
    type: bool
    default: false
  ssh_host_keys_regenerate:
    description: Remove the SSH host keys and install a unit that generates new ones at first boot, before sshd.
    type: bool
    default: false
  users:
    description: Users to create (or update when they exist).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name.
        type: str
        required: true
      groups:
        description: Supplementary groups (created when missing); added to the user's existing groups.
        type: list
        elements: str
        default: []
      shell:
        description: Login shell.
        type: str
        default: /bin/bash
      uid:
        description: User id for a new user.
        type: int
      authorized_keys:
        description: SSH public keys; they replace the user's C(~/.ssh/authorized_keys).
        type: list
        elements: str
        default: []
      password_hash:
        description: A crypt(3) password hash (C({{ 'pw' | password_hash('sha512') }})). Never logged.
        type: str
  root_password:
    description: Root password (plain text; hashed inside the guest). Never logged.
    type: str
  network:
    description:
      - systemd-networkd configuration, one entry per NIC match (NIC names depend on the PCI slot, so match
        by pattern or MAC). Replaces the files this module wrote before.
    type: list
    elements: dict
    default: []
    suboptions:
      match:
        description: Interface name pattern. V(en*) when neither O(network[].match) nor O(network[].mac) is set.
        type: str
      mac:
        description: MAC address of the interface.
        type: str
      dhcp:
        description: Use DHCP. Defaults to V(true) when no O(network[].addresses) are given.
        type: bool
      addresses:
        description: Static addresses with prefix length (V(10.0.0.5/24)).
        type: list
        elements: str
        default: []
      gateway:
        description: Default gateway.
        type: str
      dns:
        description: DNS servers.
        type: list
        elements: str
        default: []
  files:
    description: Files to write into the image.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path in the image.
        type: str
        required: true
      content:
        description: File content. Exactly one of O(files[].content) and O(files[].src).
        type: str
      src:
        description: A file on the machine running the module to copy.
        type: path
      mode:
        description: File mode, octal as a string (V('0644')). V('0644') when not set.
        type: raw
      owner:
        description: Owner (name or id in the image).
        type: str
      group:
        description: Group (name or id in the image).
        type: str
  firstboot_commands:
    description:
      - Shell commands run once, in order, at the next boot (by the C(virtforge-firstboot) systemd unit; output in
        C(/var/log/virtforge-firstboot.log)).
    type: list
    elements: str
    default: []
  cloud_init_seed:
    description:
      - Write a cloud-init NoCloud seed ISO (volume id C(cidata)) for an image that has cloud-init; attach it
        to the domain as a CD-ROM. The seed's content hash is kept in its application id, so an unchanged seed
        is not rewritten.
    type: dict
    suboptions:
      path:
        description: Where to write the ISO (its directory must exist). Written under a temporary name and renamed.
        type: path
        required: true
      user_data:
        description: user-data, as a dict (written as C(#cloud-config)) or a string taken as is.
        type: raw
      meta_data:
        description: meta-data. C(instance-id) defaults to a hash of the seed; C(local-hostname) to O(hostname).
        type: dict
      network_config:
        description: network-config (version 1 or 2), as a dict or a string.
        type: raw
      instance_id:
        description: Instance id, when O(cloud_init_seed.meta_data) has none.
        type: str
  force:
    description: Customize even when a running domain uses the image (risks corrupting it).
    type: bool
    default: false
  modify_with_clones:
    description: Customize even when other images use this one as their backing file (they see the change, or break).
    type: bool
    default: false
  verify_record:
    description: Always read the record inside the image, even when the file's extended attribute says it is applied.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the record (read-only) and reports whether the customization would be applied; the image
      is not modified.
  diff_mode:
    support: full
    description: Shows the recorded spec before and after (secrets masked).
  idempotent:
    support: full
    description: The same spec is recorded in the image and reports no change.
requirements:
  - libguestfs-tools (guestfish, virt-cat), qemu-utils, openssl (for O(root_password)); genisoimage for
    O(cloud_init_seed).
  - libvirt-python (to check that no running domain uses the image).
notes:
  - The guest's network configuration uses systemd-networkd (images from M(virtforge.libvirt.image_build) use it).
  - Bad input fails before the image is touched.
seealso:
  - module: virtforge.libvirt.image_build
  - module: virtforge.libvirt.volume
"""

EXAMPLES = r"""
- name: Give a clone its own identity
  virtforge.libvirt.image_customize:
    image: /var/lib/libvirt/images/web1.qcow2
    hostname: web1.example.com
    machine_id_reset: true
    ssh_host_keys_regenerate: true
    users:
      - name: deploy
        groups: [sudo]
        authorized_keys:
          - "{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"
    files:
      - path: /etc/motd
        content: "web1, deployed by Ansible\n"
        mode: "0644"
    firstboot_commands:
      - echo "first boot of $(hostname)" > /var/log/firstboot.txt

- name: Static address on the NIC with this MAC, DHCP on the others
  virtforge.libvirt.image_customize:
    image: /var/lib/libvirt/images/db1.qcow2
    network:
      - mac: "52:54:00:12:34:56"
        addresses: [10.10.0.5/24]
        gateway: 10.10.0.1
        dns: [10.10.0.1]
      - match: "en*"
        dhcp: true
    root_password: "{{ vault_root_password }}"

- name: A NoCloud seed for an image with cloud-init
  virtforge.libvirt.image_customize:
    cloud_init_seed:
      path: /var/lib/libvirt/images/app1-seed.iso
      user_data:
        users:
          - name: admin
            ssh_authorized_keys: ["{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"]
      meta_data:
        local-hostname: app1
"""

RETURN = r"""
images:
  description: With O(images), one result per item, in order, with the keys documented here for one image.
  returned: when O(images) is given
  type: list
  elements: dict
image:
  description: Absolute path of the image.
  returned: always
  type: str
customization_sha256:
  description: sha256 of the canonical spec (what the record in the image says once applied).
  returned: always
  type: str
previous_sha256:
  description: The hash recorded in the image before this run (null when it had none).
  returned: when O(image) is set
  type: str
record_source:
  description: Where the previous record was read, V(xattr) (the image file's attribute) or V(image) (virt-cat).
  returned: when O(image) is set
  type: str
spec:
  description: The canonical spec, secrets masked.
  returned: always
  type: dict
changes:
  description: What was (or would be) changed, as C({path, action, before, after}).
  returned: always
  type: list
  elements: dict
timings:
  description: Seconds spent reading the record (read_record), in the guestfish run (customize) and committing the
    overlay (commit).
  returned: always
  type: dict
seed:
  description: The cloud-init seed (path, sha256 of its content, changed, previous_sha256, files).
  returned: when O(cloud_init_seed) is set
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtforge.libvirt.plugins.module_utils import _libvirt
from ansible_collections.virtforge.libvirt.plugins.module_utils._errors import fail_from_exception
from ansible_collections.virtforge.libvirt.plugins.module_utils._image import customize
from ansible_collections.virtforge.libvirt.plugins.module_utils._run import Runner


def main():
    argument_spec = dict(_libvirt.CONNECTION_ARGSPEC)
    argument_spec.update(customize.ARGUMENT_SPEC)
    argument_spec["images"] = dict(type="list", elements="dict")
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("image", "volume"), ("image", "images"), ("volume", "images")],
                           required_by=dict(volume="pool"))
    _libvirt.check_libraries(module)
    conns = []

    def connect():
        if not conns:
            conns.append(_libvirt.module_connection(module, readonly=True))
        return conns[0]

    try:
        result = customize.run_module(module, Runner(module), connect=connect)
    except Exception as exc:  # pylint: disable=broad-except
        fail_from_exception(module, exc)
    finally:
        for conn in conns:
            conn.close()
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
