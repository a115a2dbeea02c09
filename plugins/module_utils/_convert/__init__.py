# -*- coding: utf-8 -*-
# Copyright: (c) 2026, virtforge.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Conversions: V2P (image onto a block device), V2V (virt-v2v into KVM), P2V (a disk into KVM)."""
