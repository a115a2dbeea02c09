#!/usr/bin/env bash
# What the kernel enforces for a running domain, read from the QEMU process's cgroups and threads:
#   shares, vcpu0_quota, vcpu0_period, memory_limit, memory_soft_limit, vcpuN_cpus (affinity of "CPU N/..." threads), emulator_cpus
# usage: tuning-probe.sh DOMAIN
set -euo pipefail
pid=$(cat "/run/libvirt/qemu/$1.pid")
cpu_path=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {print $3}' "/proc/$pid/cgroup")   # .../qemu-N-name.libvirt-qemu/emulator
mem_path=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")
dom_cpu=/sys/fs/cgroup/cpu${cpu_path%/emulator}
echo "shares=$(cat "$dom_cpu/cpu.shares")"
echo "vcpu0_quota=$(cat "$dom_cpu/vcpu0/cpu.cfs_quota_us")"
echo "vcpu0_period=$(cat "$dom_cpu/vcpu0/cpu.cfs_period_us")"
echo "memory_limit=$(cat "/sys/fs/cgroup/memory$mem_path/memory.limit_in_bytes")"
echo "memory_soft_limit=$(cat "/sys/fs/cgroup/memory$mem_path/memory.soft_limit_in_bytes")"
echo "emulator_cpus=$(awk '/^Cpus_allowed_list/ {print $2}' "/proc/$pid/status")"
for task in /proc/"$pid"/task/*; do
  comm=$(cat "$task/comm")
  if [[ $comm =~ ^CPU\ ([0-9]+)/ ]]; then
    echo "vcpu${BASH_REMATCH[1]}_cpus=$(awk '/^Cpus_allowed_list/ {print $2}' "$task/status")"
  fi
done
