#!/usr/bin/env bash
# The test lab: a real libvirtd (and virtlogd) running inside a network namespace of its own,
# so every bridge, tap, dnsmasq and NAT rule libvirt creates lives there and never touches the
# machine's own network. Ansible and the tests reach libvirtd over its unix socket as usual.
#
#   tests/lab/lab.sh up       start (idempotent), define the lab pool and network
#   tests/lab/lab.sh down     stop libvirtd, destroy lab guests, remove the namespace
#   tests/lab/lab.sh status
#   tests/lab/lab.sh restart-libvirtd   (used by the fault tests)
#
# On a host with systemd, libvirtd is usually already running: set VF_LAB_SYSTEM=1 to use it as is.
set -euo pipefail
NS=${VF_LAB_NS:-vflab}
LAB_DIR=${VF_LAB_DIR:-/var/lib/virtforge-lab}
POOL=${VF_LAB_POOL:-vflab}
NET=${VF_LAB_NET:-vflab-net}
URI=qemu:///system

log() { printf '[lab] %s\n' "$*" >&2; }

libvirtd_pid() { pgrep -x libvirtd | head -n1 || true; }

ns_of_pid() { readlink "/proc/$1/ns/net" 2>/dev/null || true; }

# `ip netns exec` gives the command a mount namespace with a fresh /sys for the lab's network
# namespace, so the cgroup hierarchies under /sys/fs/cgroup are gone in there and libvirt runs guests
# without cgroups (no cputune shares/quota, memtune, blkio). Mount the machine's own hierarchies again
# inside that mount namespace (only /sys/fs/cgroup; /sys/class/net stays the lab's), then start the daemon.
ns_daemon() {
  local mounts; mounts=$(awk '$2 ~ "^/sys/fs/cgroup" && ($3 == "cgroup" || $3 == "cgroup2") {print $3, $2, $4}' /proc/mounts)
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  ip netns exec "$NS" bash -euc '
    if [ -n "$1" ] && ! mountpoint -q /sys/fs/cgroup; then
      while read -r type dir opts; do
        [ "$dir" = /sys/fs/cgroup ] || { mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup; }
        mkdir -p "$dir"
        mount -t "$type" -o "$opts" "$type" "$dir"
      done <<<"$1"
    fi
    shift; exec "$@"' ns_daemon "$mounts" "$@"
}

start_daemons() {
  mkdir -p /var/log/libvirt /run/libvirt /var/lib/libvirt/images "$LAB_DIR/pool"
  getent passwd libvirt-qemu >/dev/null || { log "user libvirt-qemu missing: install libvirt-daemon-system"; exit 1; }
  local names; names=$(ip netns list)
  if ! [[ $'\n'$names$'\n' =~ $'\n'$NS($'\n'|[[:space:]]) ]]; then
    ip netns add "$NS"
  fi
  ip netns exec "$NS" ip link set lo up
  local pid ns lab_ns; pid=$(libvirtd_pid)
  if [ -n "$pid" ]; then
    ns=$(ns_of_pid "$pid"); lab_ns=$(ip netns exec "$NS" readlink /proc/self/ns/net)
    if [ -n "$ns" ] && [ "$ns" != "$lab_ns" ]; then
      # only a libvirtd positively seen in another namespace (the host's own) is replaced
      log "a libvirtd outside the lab namespace is running (pid $pid); stopping it"
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    else
      wait_for_libvirtd && return 0
    fi
  fi
  pgrep -x virtlogd >/dev/null || ns_daemon virtlogd -d
  ns_daemon libvirtd -d
  wait_for_libvirtd || { log "libvirtd did not answer on $URI"; exit 1; }
}

wait_for_libvirtd() {
  for _ in $(seq 1 50); do
    virsh -c "$URI" version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# (no `virsh ... | grep -q` under pipefail: grep exits at the first match and virsh dies of SIGPIPE)
pool_running() { local out; out=$(virsh -c "$URI" pool-info "$POOL" 2>/dev/null) && [[ $out =~ State:[[:space:]]+running ]]; }
net_active() { local out; out=$(virsh -c "$URI" net-info "$NET" 2>/dev/null) && [[ $out =~ Active:[[:space:]]+yes ]]; }

define_pool_and_net() {
  if ! virsh -c "$URI" pool-info "$POOL" >/dev/null 2>&1; then
    virsh -c "$URI" pool-define-as "$POOL" dir --target "$LAB_DIR/pool" >/dev/null
  fi
  # (another run may start it at the same moment: "already active" is fine)
  pool_running || virsh -c "$URI" pool-start "$POOL" >/dev/null 2>&1 || pool_running
  virsh -c "$URI" pool-autostart "$POOL" >/dev/null
  if ! virsh -c "$URI" net-info "$NET" >/dev/null 2>&1; then
    # A NAT network inside the lab namespace only: its addresses exist nowhere else.
    cat > "$LAB_DIR/net.xml" <<XML
<network>
  <name>$NET</name>
  <forward mode='nat'/>
  <bridge name='vfbr0' stp='off'/>
  <ip address='10.251.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.251.0.100' end='10.251.0.250'/></dhcp>
  </ip>
</network>
XML
    virsh -c "$URI" net-define "$LAB_DIR/net.xml" >/dev/null
  fi
  net_active || virsh -c "$URI" net-start "$NET" >/dev/null 2>&1 || net_active
  virsh -c "$URI" net-autostart "$NET" >/dev/null
}

case "${1:-status}" in
  up)
    if [ "${VF_LAB_SYSTEM:-0}" != 1 ]; then start_daemons; fi
    define_pool_and_net
    log "libvirtd $(virsh -c "$URI" version | awk '/libvirt/ {print $NF; exit}') up in namespace $NS; pool $POOL, network $NET"
    ;;
  restart-libvirtd)
    pid=$(libvirtd_pid); [ -n "$pid" ] && kill -9 "$pid"
    sleep 0.5; rm -f /run/libvirtd.pid
    ns_daemon libvirtd -d
    for _ in $(seq 1 50); do virsh -c "$URI" version >/dev/null 2>&1 && exit 0; sleep 0.2; done
    exit 1
    ;;
  down)
    for d in $(virsh -c "$URI" list --all --name 2>/dev/null | grep -E '^(vf|vft|bench)-' || true); do
      virsh -c "$URI" destroy "$d" >/dev/null 2>&1 || true
      virsh -c "$URI" undefine "$d" --nvram >/dev/null 2>&1 || virsh -c "$URI" undefine "$d" >/dev/null 2>&1 || true
    done
    pid=$(libvirtd_pid)
    if [ -n "$pid" ]; then kill "$pid" || true; fi
    pkill -x virtlogd || true
    ip netns del "$NS" 2>/dev/null || true
    ;;
  status)
    pid=$(libvirtd_pid)
    if [ -n "$pid" ]; then echo "libvirtd pid $pid netns $(ip netns identify "$pid" || true)"; else echo "libvirtd not running"; fi
    virsh -c "$URI" list --all 2>/dev/null || true
    ;;
  *) echo "usage: $0 up|down|status|restart-libvirtd" >&2; exit 2 ;;
esac
