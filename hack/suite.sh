#!/usr/bin/env bash
# The end-to-end part of `make test`, after lint and unit tests, with the lab up and the golden image built.
# The suites that boot guests under emulation run side by side in lanes whose output lines carry the lane's
# name; each lane mostly keeps about one emulated CPU busy, and on our 2-CPU machines three lanes finish far
# sooner than the same suites one after another (docs/testing.md has the timings):
#   exclusive              first and alone: targets that restart the lab's libvirtd (alias `exclusive`)
#   integration            every other integration target (make run-integration)
#   conversions            the generic-kernel image, then the P2V/V2V/V2P targets (make run-conversions)
#   molecule-<provider>    the KVM-host guest image, then the kvm_host scenario per network provider in
#                          VF_TEST_MOLECULE_PROVIDERS (default ifupdown; `ifupdown,networkmanager` runs both,
#                          each in a lane of its own)
# The suite fails if any lane fails; every lane runs to its end either way and prints its time.
# The same suites one after another: make test-full.
set -euo pipefail
cd "$(dirname "$0")/.."
PROVIDERS=${VF_TEST_MOLECULE_PROVIDERS:-ifupdown}
start=$(date +%s)
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT

lane() {  # lane NAME TARGET... (environment passed through)
    local name=$1 t0 rc verdict
    shift
    t0=$(date +%s)
    set +e
    make --no-print-directory "$@" 2>&1 | sed -u "s/^/[$name] /"
    rc=${PIPESTATUS[0]}
    set -e
    verdict=$( ((rc == 0)) && echo passed || echo "FAILED (rc=$rc)")
    echo "[$name] $verdict in $(( $(date +%s) - t0 )) s" | tee -a "$summary"
    return "$rc"
}

molecule_lanes() {
    lane host-image host-image || return 1
    local pids=() p rc=0
    for p in ${PROVIDERS//,/ }; do
        VF_MOLECULE_PROVIDERS=$p lane "molecule-$p" run-molecule & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return "$rc"
}

rc=0
lane exclusive run-exclusive || rc=1
lane integration run-integration & integration=$!
lane conversions generic-image run-conversions & conversions=$!
molecule_lanes & molecule=$!
wait "$integration" || rc=1
wait "$conversions" || rc=1
wait "$molecule" || rc=1
echo "--- lanes:"
cat "$summary"
echo "end-to-end suite $( ((rc == 0)) && echo passed || echo FAILED) in $(( $(date +%s) - start )) s"
exit "$rc"
