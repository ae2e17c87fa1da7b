#!/usr/bin/env bash
# Debian packages the test suite drives for real: chromium (browser tests), wrk and nginx (benchmarks),
# node and npm (OpenRouter's TypeScript SDK and the AI SDK provider, tests/node).
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# The Node test packages, exactly as locked (tests/e2e/test_node_sdks.py runs them against the gateway).
(cd "$(dirname "$0")/../tests/node" && npm ci --no-audit --no-fund --loglevel=error)
