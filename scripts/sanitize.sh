#!/usr/bin/env bash
# Runs every test under AddressSanitizer, ThreadSanitizer, or both (the default), one after the other.
#
#   scripts/sanitize.sh [address|thread]... [-- swift test arguments, e.g. --filter ProxyTests]
#
# The same test command as the README's (scripts/test.sh), with SANITIZE set: it installs what the tests need,
# builds into .build-address / .build-thread (a cold build of everything the first time) and stops at the first
# sanitizer report. Prints the time each sanitizer took.
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do kinds+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ "${#kinds[@]}" -gt 0 ] || kinds=(address thread)
for kind in "${kinds[@]}"; do
  start=$(date +%s)
  SANITIZE="$kind" scripts/test.sh "$@"
  echo "sanitize.sh: $kind passed in $(( $(date +%s) - start )) s" >&2
done
