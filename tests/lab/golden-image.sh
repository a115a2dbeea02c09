#!/usr/bin/env bash
# Builds the lab golden image with virtforge.libvirt.image_build (cached by recipe hash: a cache
# hit takes seconds) and writes /var/lib/virtforge-lab/golden.json {"path": ..., "sha256": ...}.
# With --host: the KVM-host guest image of the molecule scenario (tests/lab/host-image.yml) and
# kvmhost.json instead. With --generic: the same recipe as the golden image with Debian's generic
# kernel (drivers for SATA and e1000, used by the V2P target) and generic.json. With --efi: that recipe
# for UEFI firmware (GPT, EFI system partition, GRUB for UEFI; the V2P target's UEFI source) and efi.json.
#
#   tests/lab/golden-image.sh [--host|--generic|--efi]           build or reuse
#   tests/lab/golden-image.sh [--host|--generic|--efi] --force   rebuild even if cached
# Progress of a build: tail -f /var/cache/virtforge/images/<recipe hash>.log
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LAB_DIR=${VF_LAB_DIR:-/var/lib/virtforge-lab}
CACHE_DIR=${VF_IMAGE_CACHE_DIR:-/var/cache/virtforge/images}
EXTRA=()
KIND=()
PLAYBOOK=tests/lab/golden-image.yml
RECORD=golden.json
for arg in "$@"; do
  case $arg in
    --force) EXTRA=(-e '{"vf_golden_force": true}') ;;
    --host) PLAYBOOK=tests/lab/host-image.yml; RECORD=kvmhost.json ;;
    --generic) KIND=(-e vf_golden_kind=generic); RECORD=generic.json ;;
    --efi) KIND=(-e vf_golden_kind=efi); RECORD=efi.json ;;
    *) echo "usage: $0 [--host|--generic|--efi] [--force]" >&2; exit 2 ;;
  esac
done

mkdir -p "$LAB_DIR" "$CACHE_DIR"
# QEMU runs as libvirt-qemu and must be able to read the golden image through every directory
chmod 0755 "$LAB_DIR" "$(dirname "$CACHE_DIR")" "$CACHE_DIR"

cd "$ROOT"
test -e .build/collections/ansible_collections/virtforge/libvirt || make -s collection
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$ROOT/tests/ansible.cfg}
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.build/collections}
export ANSIBLE_PYTHON_INTERPRETER=${ANSIBLE_PYTHON_INTERPRETER:-$ROOT/.venv/bin/python}
start=$(date +%s)
echo "[golden-image] building or reusing $PLAYBOOK (build progress: tail -f $CACHE_DIR/<hash>.log)" >&2
"$ROOT/.venv/bin/ansible-playbook" -i "$ROOT/tests/integration/inventory.ini" "$PLAYBOOK" \
  -e "vf_lab_dir=$LAB_DIR" -e "vf_golden_cache_dir=$CACHE_DIR" "${EXTRA[@]}" "${KIND[@]}"

path=$("$ROOT/.venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["path"])' "$LAB_DIR/$RECORD")
test -f "$path" || { echo "[golden-image] $path missing" >&2; exit 1; }
if getent passwd libvirt-qemu >/dev/null; then
  su -s /bin/sh libvirt-qemu -c "test -r '$path'" || { echo "[golden-image] libvirt-qemu cannot read $path" >&2; exit 1; }
fi
echo "[golden-image] $path ready in $(( $(date +%s) - start )) s" >&2
