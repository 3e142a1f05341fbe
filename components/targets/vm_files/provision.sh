#!/usr/bin/env bash
# Base provisioning of a dataplatform VM, idempotent (safe to run again): Docker Engine from the distribution's
# packages (Debian, Ubuntu), the `dataplatform` system user and group, the data and config directories.
# Usage (as root): provision.sh DATA_DIR     Piped to `bash -s`: everything runs inside main, which bash has read
# completely before it starts, so no command can swallow the rest of the script from stdin.
set -euo pipefail

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q </dev/null
  apt-get install -y -q --no-install-recommends "$@" </dev/null
}

install_docker() {
  local missing=()
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "provision: ${missing[*]} missing and no apt-get: install Docker Engine and curl on this host first" >&2
    exit 1
  fi
  apt_install "${missing[@]}"
}

main() {
  local data_dir="${1:?usage: provision.sh DATA_DIR}"
  install_docker
  systemctl enable --now --quiet docker.service
  getent group dataplatform >/dev/null || groupadd --system dataplatform
  if ! id -u dataplatform >/dev/null 2>&1; then
    useradd --system --gid dataplatform --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin \
      dataplatform
  fi
  install -d -m 0750 -o dataplatform -g dataplatform "$data_dir"
  install -d -m 0750 -o root -g dataplatform /etc/dataplatform
  echo "provisioned $(hostname): $(docker --version), data in $data_dir"
}

main "$@"
