#!/usr/bin/env bash
# Installs what building and testing pyward needs on a fresh Debian machine, and nothing when it
# is all there already. Safe to run again.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# C toolchain for the bundled SQLite (rusqlite) and friends.
have cc || need_apt+=(gcc)
have pkg-config || need_apt+=(pkg-config)
have git || need_apt+=(git)
# eBPF sensor (crates/pyward-sensor): clang compiles the CO-RE programs; the bundled libbpf
# links libelf and zlib. vmlinux.h is vendored, so neither bpftool nor kernel headers are needed.
have clang || need_apt+=(clang)
have_pkg libelf-dev || need_apt+=(libelf-dev)
have_pkg zlib1g-dev || need_apt+=(zlib1g-dev)
# Python with venv and pip: test fixtures build real virtualenvs with real pip.
if ! have python3; then
  need_apt+=(python3 python3-venv python3-pip)
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi

if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if ! have cargo; then
  echo "setup: cargo is missing; install the Rust toolchain (rustup) first" >&2
  exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  python3 -m ensurepip --upgrade >/dev/null
fi
