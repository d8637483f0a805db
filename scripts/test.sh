#!/usr/bin/env bash
# Runs every Gatehouse test. Installs what the tests need first (Debian packages, Python packages),
# so it works on a fresh Debian/Ubuntu machine with Swift 6 installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in curl python3; do
  command -v "$tool" >/dev/null 2>&1 || need_apt+=("$tool")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# Python test dependencies (independent JOSE implementation, OpenID provider) come with the JWT and login work.
if [ -f scripts/requirements-test.txt ]; then
  python3 -m pip install -q -r scripts/requirements-test.txt
fi

swift build --build-tests
swift test --skip-build "$@"
