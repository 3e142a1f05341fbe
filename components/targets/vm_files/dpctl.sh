#!/usr/bin/env bash
# dpctl: the idempotent steps Pulumi runs on a dataplatform VM (installed by the vm target, run as root).
#
#   dpctl put-file PATH MODE OWNER [UNIT]  write stdin to PATH atomically (never readable by others while being
#                                          written); when the content changed and UNIT is running, restart UNIT
#   dpctl unit-apply NAME [PORT] [TIMEOUT] install stdin as the systemd unit NAME.service, enable it, (re)start it
#                                          when it changed or is not running, wait until it is active and, given a
#                                          PORT, until 127.0.0.1:PORT accepts connections (TIMEOUT seconds)
#   dpctl unit-remove NAME                 stop, disable and remove NAME.service (its data directory is kept)
#   dpctl pull IMAGE                       pull IMAGE unless it is present (a restart needs no registry)
#   dpctl wait-tcp HOST PORT TIMEOUT       wait until HOST:PORT accepts connections
set -euo pipefail

readonly UNIT_DIR=/etc/systemd/system
scratch=""
trap 'rm -f "$scratch"' EXIT

die() {
  echo "dpctl: $*" >&2
  exit 1
}

put_file() {
  local path="$1" mode="$2" owner="$3" unit="${4:-}"
  install -d -m 0750 -o root -g dataplatform "$(dirname "$path")"
  scratch="$(mktemp "$path.XXXXXX")" # created 0600: a secret is never readable by others
  cat >"$scratch"
  chown "$owner" "$scratch"
  chmod "$mode" "$scratch"
  if [[ -f "$path" ]] && cmp -s "$scratch" "$path"; then
    chown "$owner" "$path"
    chmod "$mode" "$path"
    echo "unchanged: $path"
    return 0
  fi
  mv -f "$scratch" "$path"
  echo "written: $path"
  if [[ -n "$unit" ]] && systemctl is-active --quiet "$unit"; then
    echo "restarting $unit (its configuration changed)"
    systemctl restart "$unit"
  fi
}

wait_tcp() {
  local host="$1" port="$2" timeout="$3"
  local deadline=$((SECONDS + timeout))
  until timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 2
  done
}

unit_apply() {
  local name="$1" port="${2:-}" timeout="${3:-300}"
  local path="$UNIT_DIR/$name.service" changed=no
  scratch="$(mktemp)"
  cat >"$scratch"
  if ! cmp -s "$scratch" "$path"; then
    install -m 0644 "$scratch" "$path"
    changed=yes
  fi
  systemctl daemon-reload
  systemctl enable --quiet "$name.service"
  if [[ "$changed" == yes ]] || ! systemctl is-active --quiet "$name.service"; then
    echo "starting $name"
    systemctl restart "$name.service"
  fi
  if [[ -n "$port" ]] && ! wait_tcp 127.0.0.1 "$port" "$timeout"; then
    journalctl --unit "$name.service" --lines 50 --no-pager >&2 || true
    die "$name is not accepting connections on port $port after ${timeout}s"
  fi
  systemctl is-active --quiet "$name.service" || die "$name is not running"
  echo "$name is running"
}

unit_remove() {
  local name="$1"
  systemctl disable --now --quiet "$name.service" 2>/dev/null || true
  rm -f "$UNIT_DIR/$name.service"
  systemctl daemon-reload
  echo "removed $name (data kept)"
}

pull() {
  docker image inspect "$1" >/dev/null 2>&1 || docker pull --quiet "$1"
}

main() {
  [[ $# -ge 1 ]] || die "usage: dpctl put-file|unit-apply|unit-remove|pull|wait-tcp ARGS"
  local action="$1"
  shift
  case "$action" in
    put-file) [[ $# -ge 3 ]] || die "usage: dpctl put-file PATH MODE OWNER [UNIT]"; put_file "$@" ;;
    unit-apply) [[ $# -ge 1 ]] || die "usage: dpctl unit-apply NAME [PORT] [TIMEOUT]"; unit_apply "$@" ;;
    unit-remove) [[ $# -eq 1 ]] || die "usage: dpctl unit-remove NAME"; unit_remove "$1" ;;
    pull) [[ $# -eq 1 ]] || die "usage: dpctl pull IMAGE"; pull "$1" ;;
    wait-tcp) [[ $# -eq 3 ]] || die "usage: dpctl wait-tcp HOST PORT TIMEOUT"; wait_tcp "$@" || die "$1:$2 unreachable" ;;
    *) die "unknown action $action" ;;
  esac
}

main "$@"
