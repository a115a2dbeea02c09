#!/usr/bin/env bash
# A virsh loop: define + start N tiny domains, one virsh process per call.
set -euo pipefail
count=$1 prefix=$2 xmldir=$3
for ((i = 0; i < count; i++)); do
  name=$(printf '%s%02d' "$prefix" "$i")
  virsh -q -c qemu:///system define "$xmldir/$name.xml" >/dev/null
  virsh -q -c qemu:///system start "$name" >/dev/null
done
