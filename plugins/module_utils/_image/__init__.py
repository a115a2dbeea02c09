# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Golden images: build (debootstrap + libguestfs), offline customization, cloud-init seeds.

- ``common``     canonical JSON and hashes, atomic files, phase log, qcow2 headers, libguestfs env
- ``build``      the image_build recipe and pipeline, cached by the recipe's sha256
- ``customize``  the image_customize spec, one virt-customize run, the record kept inside the image
- ``seed``       cloud-init NoCloud seed ISOs
"""

from __future__ import annotations
