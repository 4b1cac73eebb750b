#!/usr/bin/env bash
# The test command: gets what the tests need, then runs them all.
#
#   ./test.sh                 set up, then `cargo test --workspace --locked`
#   ./test.sh -- NAME         arguments after the script go to `cargo test`
#   ./test.sh --setup-only    set up and stop (.ci/run uses it before clippy)
#
# As root it installs what is missing (Debian's packages, the wasm32-wasip2 target,
# componentize-py and schemathesis from PyPI). Otherwise it installs what a user may (the target,
# componentize-py and schemathesis in a virtual environment of their own) and, before building
# anything, names every missing piece with the line that installs it.
set -euo pipefail
cd "$(dirname "$0")"

setup_only=false
if [ "${1:-}" = "--setup-only" ]; then
  setup_only=true
  shift
fi
[ "${1:-}" = "--" ] && shift

missing=()   # lines that install what is still missing, for the user to type

# Debian's packages: mosquitto (a real external broker), git (git daemon serves the
# test repositories), perl and make (vendored OpenSSL for git2), a C compiler,
# pkg-config; busybox-static and mosquitto-clients make the Docker tests' image (no
# registry here); openssl makes the TLS broker's certificates; python3 runs
# componentize-py; iproute2 (`ip`) makes the several-hosts tests' network namespaces;
# nats-server is the clustered broker they also run on; chromium and chromium-driver
# (its WebDriver) load the console in a real headless browser.
packages=()
for tool in mosquitto:mosquitto git:git perl:perl make:make cc:gcc pkg-config:pkg-config \
            busybox:busybox-static mosquitto_pub:mosquitto-clients openssl:openssl \
            python3:python3 ip:iproute2 nats-server:nats-server chromium:chromium \
            chromedriver:chromium-driver; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || packages+=("${tool##*:}")
done
if [ ${#packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${packages[*]} (Debian)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  else
    missing+=("sudo apt-get install ${packages[*]}")
  fi
fi

# The toolchain is pinned in rust-toolchain.toml; the plugins build for wasm32-wasip2.
if ! command -v rustup >/dev/null 2>&1; then
  missing+=("install rustup (https://rustup.rs), which reads rust-toolchain.toml")
elif ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "test.sh: adding the wasm32-wasip2 target"
  rustup target add wasm32-wasip2 >/dev/null || missing+=("rustup target add wasm32-wasip2")
fi

# From PyPI: componentize-py builds the Python plugin of the tests; schemathesis
# tests the daemon's HTTP API against its OpenAPI document. Where pip may not
# install into the system's Python (Debian's is externally managed), they go into
# a virtual environment under ~/.cache, put on PATH for the tests.
venv="${XDG_CACHE_HOME:-$HOME/.cache}/copper-wasm/python"
[ -d "$venv/bin" ] && export PATH="$venv/bin:$PATH"
for wanted in componentize-py:componentize-py==0.25.1 schemathesis:schemathesis==4.32.5; do
  tool="${wanted%%:*}" package="${wanted#*:}"
  command -v "$tool" >/dev/null 2>&1 && continue
  command -v python3 >/dev/null 2>&1 || break
  echo "test.sh: installing $package"
  if ! python3 -m pip install -q "$package" 2>/dev/null; then
    if ! python3 -c 'import ensurepip' 2>/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    if { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" >/dev/null 2>&1; } && "$venv/bin/pip" install -q "$package"; then
      export PATH="$venv/bin:$PATH"
    else
      missing+=("sudo apt-get install python3-venv && python3 -m venv $venv && $venv/bin/pip install '$package'")
    fi
  fi
done

# The Docker tests run on the real engine: without one they would fail, so say it now.
if ! command -v docker >/dev/null 2>&1; then
  missing+=("sudo apt-get install docker.io  (and start the engine)")
elif ! docker info >/dev/null 2>&1; then
  missing+=("start the Docker engine (sudo systemctl start docker), or let this user reach it")
fi

# The several-hosts tests make network namespaces: that takes root (CAP_NET_ADMIN).
if ! ip netns add "copper-wasm-probe-$$" >/dev/null 2>&1; then
  missing+=("run as root (the several-hosts tests make network namespaces with \`ip netns\`)")
else
  ip netns del "copper-wasm-probe-$$"
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: the tests need what this machine lacks; nothing was built. To install it:" >&2
  printf '  %s\n' "${missing[@]}" >&2
  exit 1
fi

$setup_only && exit 0
exec cargo test --workspace --locked "$@"
