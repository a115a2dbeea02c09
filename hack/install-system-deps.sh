#!/usr/bin/env bash
# Installs the Debian packages the collection's tests, demo and benchmarks need.
# Idempotent: packages already present are left alone. Run as root on Debian 12.
set -euo pipefail
PKGS=(
  # libvirt + QEMU (libvirt-daemon-system creates the libvirt-qemu user; see docs/testing.md)
  libvirt-daemon-system libvirt-clients libvirt-dev pkg-config qemu-system-x86 qemu-utils
  # libguestfs and its appliance kernel; debootstrap for golden images
  libguestfs-tools linux-image-amd64 debootstrap zstd
  # conversions
  virt-v2v nbdkit libnbd-bin
  # P2V live reads the running machine over SSH
  openssh-client
  # networking in the lab namespace
  iproute2 iptables dnsmasq-base netcat-openbsd bridge-utils
  # TPM emulator behind guests' vTPM (libvirt runs swtpm_setup and swtpm)
  swtpm swtpm-tools
  # the rest of what the host_build role installs on a Debian host (its test then finds them all present)
  python3-libvirt python3-lxml ovmf
  # misc tools used by tests (fdisk: sfdisk reads and checks the partition tables V2P writes)
  xmlstarlet genisoimage rsync git make shellcheck openssl procps fdisk
  # virt-xml-validate (libvirt-clients) runs xmllint
  libxml2-utils
)
# swtpm_localca signs each vTPM's certificates as user tss (libvirt's swtpm_user); files its CA made while
# running as another user (a libvirtd started before the tss user existed) would lock it out.
fix_swtpm_localca() { if [ -d /var/lib/swtpm-localca ] && getent passwd tss >/dev/null; then chown -R tss /var/lib/swtpm-localca; fi; }
trap fix_swtpm_localca EXIT
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
