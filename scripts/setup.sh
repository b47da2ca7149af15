#!/usr/bin/env bash
# Sets up a fresh Debian machine for ByteNite: a Docker Engine (started if none answers), Debian's static
# busybox (the base of the examples and test images, since no image registry is needed), the npm
# packages and the build. With --tests it also installs what the whole test suite needs (Chromium, code-server, a registry).
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v dockerd >/dev/null || need_apt+=(docker.io)
[ -x /bin/busybox ] || need_apt+=(busybox-static)
command -v openssl >/dev/null || need_apt+=(openssl)   # the TLS tests make their own certificates
if [ "${1:-}" = "--tests" ]; then
  # The Swarm tests build a two-node cluster with a registry of their own (started by the test, not as a service).
  command -v docker-registry >/dev/null || need_apt+=(docker-registry)
  # The private base image test puts that registry behind htpasswd (bcrypt entries, which htpasswd -B writes).
  command -v htpasswd >/dev/null || need_apt+=(apache2-utils)
  command -v ip >/dev/null || need_apt+=(iproute2)
  # The SSH engine test runs its own sshd on loopback, with keys it makes.
  [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
  # The agent on Podman's Docker-compatible API (test/agent/podman.test.ts starts its own service)
  command -v podman >/dev/null || need_apt+=(podman)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting the Docker Engine (log: /tmp/dockerd.log)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  ($SUDO setsid dockerd >/tmp/dockerd.log 2>&1 &)
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not come up; see /tmp/dockerd.log" >&2; exit 1; }
fi

for d in examples/*/; do cp -u /bin/busybox "$d/busybox"; done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build >/dev/null

if [ "${1:-}" = "--tests" ]; then
  bash scripts/install-editor-tools.sh
fi
echo "setup: ready"
