#!/usr/bin/env bash
# CI helper: make sure a Docker engine answers and locally made stand-ins for the AWS SAM
# Python build images exist (no container registry is reachable on CI).
#
#   eval "$(.ci/docker.sh)"      # -> STANDIN_IMAGE=... STANDIN_IMAGE_313=... STANDIN_IMAGE_ARM64=...
#
# Images (Debian made with debootstrap, like the SAM images: a Python, pip and a C compiler):
#   STANDIN_IMAGE        bookworm, x86_64, python3.11, gcc (compiles sdists and native local packages)
#   STANDIN_IMAGE_313    trixie,   x86_64, python3.13
#   STANDIN_IMAGE_ARM64  bookworm, arm64,  python3.11 (runs under qemu-user-static; its config says arm64)
# Env: CDK_LAYER_CI_CACHE (rootfs tarball cache, default /var/cache/cdk-lambda-layer-ci),
#      DOCKERD_LOG (default /tmp/dockerd.log), CDK_LAYER_CI_QEMU=1 (register qemu-user-static binfmt
#      handlers and make the arm64 image; without it only the x86_64 images are made).
# Needs root and Debian. The apt mirror is read from the machine's apt sources at run time; no
# host name is written here. Progress goes to stderr, stdout gets only NAME=value lines.
set -euo pipefail

STANDIN_IMAGE="${STANDIN_IMAGE:-cdk-lambda-layer/standin-build:bookworm}"
STANDIN_IMAGE_313="${STANDIN_IMAGE_313:-cdk-lambda-layer/standin-build:trixie}"
STANDIN_IMAGE_ARM64="${STANDIN_IMAGE_ARM64:-cdk-lambda-layer/standin-build:bookworm-arm64}"
CACHE_DIR="${CDK_LAYER_CI_CACHE:-/var/cache/cdk-lambda-layer-ci}"
DOCKERD_LOG="${DOCKERD_LOG:-/tmp/dockerd.log}"
BASE=python3,python3-pip,python3-venv,ca-certificates,rsync,python-is-python3

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

apt_mirror() {  # first http(s) Debian mirror of the machine's own suites (it serves every suite)
  local f SUITE
  SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
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

# --- 2. stand-in build images ----------------------------------------------------------
rootfs_tarball() {  # SUITE ARCH INCLUDE -> path of a cached rootfs tarball (made once)
  local suite=$1 arch=$2 include=$3 key tarball rootfs mirror
  key="$(printf '%s|%s|%s' "$suite" "$arch" "$include" | sha256sum | cut -c1-12)"
  tarball="$CACHE_DIR/rootfs-$suite-$arch-$key.tar"
  if [ -s "$tarball" ]; then log "using cached rootfs $tarball"; echo "$tarball"; return; fi
  apt_install debootstrap
  mirror="$(apt_mirror)"
  [ -n "$mirror" ] || die "no Debian mirror found in the apt sources"
  rootfs="$(mktemp -d /tmp/standin-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs" "$tarball.part"' EXIT
  log "debootstrap $suite ($arch) from the apt sources' mirror"
  debootstrap --arch="$arch" --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" \
    >"/tmp/ci-debootstrap-$suite-$arch.log" 2>&1 \
    || { tail -20 "/tmp/ci-debootstrap-$suite-$arch.log" >&2; die "debootstrap $suite ($arch) failed"; }
  # Slim down: package caches and lists are useless in the image.
  rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  : >"$rootfs/etc/resolv.conf"; : >"$rootfs/etc/hostname"   # docker bind-mounts its own
  mkdir -p "$CACHE_DIR"
  tar -C "$rootfs" --numeric-owner -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
  rm -rf "$rootfs"; trap - EXIT
  log "debootstrap $suite ($arch) done"
  echo "$tarball"
}

load_foreign() {  # TARBALL IMAGE ARCH: `docker import` labels any rootfs with the host's CPU, so build
  # a docker-archive (docker save's format) whose config names the CPU, and `docker load` it.
  local tarball=$1 image=$2 arch=$3 work diff config
  work="$(mktemp -d /tmp/standin-archive.XXXXXX)"
  mkdir "$work/layer" && ln -s "$tarball" "$work/layer/layer.tar"
  diff="sha256:$(sha256sum "$tarball" | cut -d' ' -f1)"
  printf '{"architecture":"%s","os":"linux","config":{"Env":["LANG=C.UTF-8","PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/bash"],"Labels":{"cdk-lambda-layer.rootfs":"%s"}},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
    "$arch" "$(basename "$tarball" .tar)" "$diff" >"$work/config.json"
  config="$(sha256sum "$work/config.json" | cut -d' ' -f1).json"
  mv "$work/config.json" "$work/$config"
  printf '[{"Config":"%s","RepoTags":["%s"],"Layers":["layer/layer.tar"]}]' "$config" "$image" >"$work/manifest.json"
  tar -C "$work" -chf - manifest.json "$config" layer | docker load >/dev/null
  rm -rf "$work"
}

make_image() {  # IMAGE SUITE ARCH INCLUDE (an image made from another package list is made again)
  local image=$1 suite=$2 arch=$3 include=$4 tarball want
  want="rootfs-$suite-$arch-$(printf '%s|%s|%s' "$suite" "$arch" "$include" | sha256sum | cut -c1-12)"
  if [ "$(docker image inspect -f '{{index .Config.Labels "cdk-lambda-layer.rootfs"}}' "$image" 2>/dev/null)" = "$want" ]; then
    log "image $image already present"; return
  fi
  tarball="$(rootfs_tarball "$suite" "$arch" "$include")"
  if [ "$arch" = "$(dpkg --print-architecture)" ]; then
    docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
      --change "LABEL cdk-lambda-layer.rootfs=$want" "$tarball" "$image" >/dev/null
  else
    load_foreign "$tarball" "$image" "$arch"
  fi
  log "image $image ready ($(docker image inspect -f '{{.Architecture}} {{.Size}}' "$image" | awk '{printf "%s, %d MB", $1, $2/1e6}'))"
}

make_image "$STANDIN_IMAGE" bookworm "$(dpkg --print-architecture)" "$BASE,gcc,libc6-dev,python3-dev"
make_image "$STANDIN_IMAGE_313" trixie "$(dpkg --print-architecture)" "$BASE"
if [ "${CDK_LAYER_CI_QEMU:-0}" = 1 ]; then
  make_image "$STANDIN_IMAGE_ARM64" bookworm arm64 "$BASE"
fi

# --- 3. the NAME=value lines for eval ---------------------------------------------------
echo "STANDIN_IMAGE=$STANDIN_IMAGE"
echo "STANDIN_IMAGE_313=$STANDIN_IMAGE_313"
[ "${CDK_LAYER_CI_QEMU:-0}" = 1 ] && echo "STANDIN_IMAGE_ARM64=$STANDIN_IMAGE_ARM64"
exit 0
