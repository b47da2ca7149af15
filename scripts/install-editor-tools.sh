#!/usr/bin/env bash
# Installs what the real-VS-Code tests need (see ../shared/guides/real-vscode-tests.md): Debian's Chromium and
# ripgrep, the build tools code-server's native modules need, and code-server 4.100.3 in .tools/code-server.
# Idempotent: every step is skipped when its result is already there, so CI can call it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
CS_VERSION=4.100.3
TOOLS="$PWD/.tools"
CS_DIR="$TOOLS/code-server"

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v rg >/dev/null || need+=(ripgrep)
command -v make >/dev/null && command -v g++ >/dev/null || need+=(build-essential)
command -v python3 >/dev/null || need+=(python3)
# Test images are built FROM scratch with a static busybox (no registry is reachable).
[ -x /bin/busybox ] || need+=(busybox-static)
[ -e /usr/include/krb5.h ] || [ -e /usr/include/krb5/krb5.h ] || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "install-editor-tools: apt-get install ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ -x "$CS_DIR/node_modules/.bin/code-server" ] && grep -q "\"version\": \"$CS_VERSION\"" "$CS_DIR/node_modules/code-server/package.json" 2>/dev/null; then
  echo "install-editor-tools: code-server $CS_VERSION already in $CS_DIR"
  exit 0
fi

# @vscode/ripgrep (inside code-server) downloads rg from GitHub in its postinstall unless this cache file exists.
RGC="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
RG_TAR="$RGC/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
if [ ! -s "$RG_TAR" ]; then
  mkdir -p "$RGC"
  tmp="$(mktemp -d)"; cp "$(command -v rg)" "$tmp/rg"
  tar czf "$RG_TAR" -C "$tmp" rg; rm -rf "$tmp"
fi

mkdir -p "$CS_DIR"
# npm 11 runs a dependency's install scripts only when package.json allows them: code-server's postinstall
# installs its own VS Code modules (native ones included), so it must run.
cat > "$CS_DIR/package.json" <<JSON
{ "name": "bytenite-editor-tools", "private": true, "allowScripts": { "code-server": true } }
JSON
echo "install-editor-tools: installing code-server $CS_VERSION into $CS_DIR (about 3 minutes)"
# npm_config_yes: node-pty's postinstall runs `npx node-gyp`. nodedir: build against this Node's headers
# instead of downloading them. --unsafe-perm: code-server's postinstall refuses root without it.
(cd "$CS_DIR" && npm_config_yes=true npm_config_nodedir=/usr npm install --no-audit --no-fund --unsafe-perm \
  --foreground-scripts "code-server@$CS_VERSION")
node -p "\"install-editor-tools: code-server \" + require(\"$CS_DIR/node_modules/code-server/package.json\").version"
