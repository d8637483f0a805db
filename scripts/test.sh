#!/usr/bin/env bash
# Runs every Gatehouse test. Installs what the tests need first, so it works on a fresh Debian/Ubuntu machine
# with Swift 6 installed: Debian packages (curl, python3-venv, chromium, chromium-driver, nginx) and a Python virtual
# environment .venv-test with scripts/requirements-test.txt (joserfc for independent tokens, Canaille as a real
# OpenID provider, Selenium for browser logins).
# Idempotent: a second run reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
# Headless browser logins (scripts/browser/login.py, Selenium); about 160 MB to download, ~40 s.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# nginx in front of Gatehouse for the forward-auth (auth_request) example.
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

venv=.venv-test
stamp="$venv/.requirements.sha256"
want=$(sha256sum scripts/requirements-test.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test.sh: creating $venv with scripts/requirements-test.txt" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
  echo "$want" > "$stamp"
fi
export GATEHOUSE_TEST_PYTHON="$PWD/$venv/bin/python"

# SANITIZE=address or SANITIZE=thread runs the same tests under that sanitizer (scripts/sanitize.sh), in a scratch
# path of its own (.build-address, .build-thread: each is a cold build of every dependency, 10-15 minutes here).
case "${SANITIZE:-}" in
  "") swift build --build-tests
      swift test --skip-build "$@" ;;
  address | thread)
      # LeakSanitizer reports the test runner's and the runtime's own never-freed allocations: leaks are off.
      # halt_on_error: the first report fails the run (the default for ASan; TSan would only print).
      export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
      export TSAN_OPTIONS="halt_on_error=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
      export GATEHOUSE_TEST_SANITIZER="$SANITIZE"
      scratch=(--scratch-path ".build-$SANITIZE" --sanitize="$SANITIZE")
      swift build --build-tests "${scratch[@]}"
      swift test --skip-build "${scratch[@]}" "$@" ;;
  *) echo "test.sh: SANITIZE must be address or thread, not '$SANITIZE'" >&2; exit 2 ;;
esac
