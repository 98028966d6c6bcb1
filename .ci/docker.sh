#!/usr/bin/env bash
# CI helper: make sure a Docker engine answers and a locally made stand-in for the
# AWS SAM Python build image exists (no container registry is reachable on CI).
#
#   eval "$(.ci/docker.sh)"      # -> STANDIN_IMAGE=<name:tag>
#
# Env: STANDIN_IMAGE (default cdk-lambda-layer/standin-build:bookworm),
#      CDK_LAYER_CI_CACHE (rootfs tarball cache, default /var/cache/cdk-lambda-layer-ci),
#      DOCKERD_LOG (default /tmp/dockerd.log), CDK_LAYER_CI_QEMU=1 (also register
#      qemu-user-static binfmt handlers so arm64 images can run).
# Needs root and Debian. The apt mirror is read from the machine's apt sources at run
# time; no host name is written here. Progress goes to stderr, stdout gets one line.
set -euo pipefail

STANDIN_IMAGE="${STANDIN_IMAGE:-cdk-lambda-layer/standin-build:bookworm}"
CACHE_DIR="${CDK_LAYER_CI_CACHE:-/var/cache/cdk-lambda-layer-ci}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
SUITE=bookworm
INCLUDE=python3,python3-pip,python3-venv,ca-certificates,rsync,python-is-python3

log() { echo "[ci/docker +${SECONDS}s] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
engine_up() { timeout 5 docker info >/dev/null 2>&1; }
[ "$(id -u)" = 0 ] || engine_up || die "must run as root (or with a running engine)"

APT_UPDATED=
apt_install() {  # install the given Debian packages if any is missing
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then apt-get update -qq >/tmp/ci-apt.log 2>&1 || { tail -20 /tmp/ci-apt.log >&2; die "apt-get update failed"; }; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>/tmp/ci-apt.log 2>&1 || { tail -20 /tmp/ci-apt.log >&2; die "apt-get install failed"; }
}

apt_mirror() {  # first http(s) Debian mirror whose suites include exactly $SUITE
  local f
  { for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] || continue   # one-line format: deb [opts] URI suite components
      awk -v s="$SUITE" '$1=="deb" { i=2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i+1)==s && $i ~ /^https?:/) print $i }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -r "$f" ] || continue   # deb822 format, one stanza per paragraph
      awk -v s="$SUITE" -v RS= '{ t=u=su=""; en=1; n=split($0, L, "\n")
        for (k=1; k<=n; k++) { if (L[k] ~ /^#/) continue; split(L[k], w, /[ \t]+/)
          if (w[1]=="Types:") t=L[k]; if (w[1]=="URIs:") u=w[2]; if (w[1]=="Suites:") su=L[k]
          if (w[1]=="Enabled:" && w[2]=="no") en=0 }
        if (en && t ~ /[ \t]deb([ \t]|$)/ && (su " ") ~ ("[ \t]" s " ") && u ~ /^https?:/) print u }' "$f"
    done; } | awk 'NR==1'
}

# --- 1. engine -------------------------------------------------------------------
if engine_up; then
  log "docker engine already answers; skipping engine setup"
else
  apt_install docker.io   # pulls containerd, runc, iptables, tini
  command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"
  if ! pidof dockerd >/dev/null; then
    # After an unclean stop, dockerd trusts containerd's stale pid file and then waits
    # forever on a dead socket: end that leftover containerd and drop the pid files.
    CPID="$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)"
    if [ -n "$CPID" ] && [ "$(cat "/proc/$CPID/comm" 2>/dev/null)" = containerd ]; then
      log "stopping leftover containerd (pid $CPID)"; kill "$CPID" || true
      for _ in $(seq 20); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
    log "starting dockerd (log: $DOCKERD_LOG)"
    setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  DEADLINE=$((SECONDS + 60))
  until engine_up; do
    sleep 1; WHY=; pidof dockerd >/dev/null || WHY="dockerd exited"   # pidof skips zombies
    [ "$SECONDS" -lt "$DEADLINE" ] || WHY="dockerd did not answer within 60 s"
    [ -z "$WHY" ] || { log "$WHY; log tail:"; grep -v 'module=grpc' "$DOCKERD_LOG" | tail -30 >&2; exit 1; }
  done
  log "docker engine up: $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
fi

if [ "${CDK_LAYER_CI_QEMU:-0}" = 1 ]; then
  apt_install qemu-user-static binfmt-support
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >&2
  log "binfmt qemu-aarch64: $(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64)"
fi

# --- 2. stand-in build image ---------------------------------------------------------
if docker image inspect "$STANDIN_IMAGE" >/dev/null 2>&1; then
  log "image $STANDIN_IMAGE already present"
else
  ARCH="$(dpkg --print-architecture)"
  KEY="$(printf '%s|%s|%s' "$SUITE" "$ARCH" "$INCLUDE" | sha256sum | cut -c1-12)"
  TARBALL="$CACHE_DIR/rootfs-$SUITE-$ARCH-$KEY.tar"
  if [ ! -s "$TARBALL" ]; then
    apt_install debootstrap
    MIRROR="$(apt_mirror)"
    [ -n "$MIRROR" ] || die "no Debian mirror for suite $SUITE found in the apt sources"
    ROOTFS="$(mktemp -d /tmp/standin-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS" "$TARBALL.part"' EXIT
    log "debootstrap $SUITE ($ARCH) from the apt sources' mirror (about 40 s)"
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$MIRROR" \
      >/tmp/ci-debootstrap.log 2>&1 || { tail -20 /tmp/ci-debootstrap.log >&2; die "debootstrap failed"; }
    # Slim down: package caches and lists are useless in the image.
    rm -rf "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    : >"$ROOTFS/etc/resolv.conf"; : >"$ROOTFS/etc/hostname"   # docker bind-mounts its own
    mkdir -p "$CACHE_DIR"
    tar -C "$ROOTFS" --numeric-owner -cf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
    rm -rf "$ROOTFS"; trap - EXIT
  else
    log "using cached rootfs $TARBALL"
  fi
  log "docker import -> $STANDIN_IMAGE"
  docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    "$TARBALL" "$STANDIN_IMAGE" >/dev/null
  log "image $STANDIN_IMAGE ready ($(docker image inspect -f '{{.Size}}' "$STANDIN_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
fi

# --- 3. the one stdout line ------------------------------------------------------------
echo "STANDIN_IMAGE=$STANDIN_IMAGE"
