#!/usr/bin/env bash
# Install the Debian packages liftgate's build, tests and demo need, when missing.
#
#   PostgreSQL server >= 15  (package `postgresql`; initdb, pg_ctl, postgres,
#                             pg_dump, pg_restore, psql under /usr/lib/postgresql/<major>/bin)
#   nginx, haproxy, git
#   strace                   (the durability tests trace liftgate's fsync/syncfs calls)
#   python3-venv             (only when the interpreter in $PYTHON, default python3,
#                             cannot create a venv with pip)
#
# Quiet and fast when everything is present. As root it runs
# `apt-get update` + `apt-get install -y --no-install-recommends ...` for what is
# missing, without letting the packages start their system services (our tests
# run their own private PostgreSQL/nginx/haproxy instances). As non-root it names
# the apt command to run. Either way it ends by verifying the tools exist.
set -euo pipefail

PG_MIN_MAJOR=15
PYTHON="${PYTHON:-python3}"

log() { printf 'install-system: %s\n' "$*" >&2; }

# Highest PostgreSQL major that has an initdb under /usr/lib/postgresql, or empty.
pg_major() {
    local best="" d major
    for d in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$d" ] || continue
        major="${d#/usr/lib/postgresql/}"
        major="${major%%/*}"
        major="${major%%.*}"          # "9.6" -> 9
        [[ "$major" =~ ^[0-9]+$ ]] || continue
        if [ -z "$best" ] || [ "$major" -gt "$best" ]; then best="$major"; fi
    done
    printf '%s' "$best"
}

have_pg() {
    local m
    m="$(pg_major)"
    [ -n "$m" ] && [ "$m" -ge "$PG_MIN_MAJOR" ]
}

# nginx and haproxy live in /usr/sbin, which a non-root PATH may lack.
have_cmd() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

# True when $PYTHON can build a venv that has pip (Debian's python3 needs python3-venv).
python_can_venv() {
    command -v "$PYTHON" >/dev/null 2>&1 || return 0   # Makefile reports a missing python
    "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1
}

# Fills the global arrays MISSING_PKGS (apt package names) and MISSING_WHAT (human names).
find_missing() {
    MISSING_PKGS=()
    MISSING_WHAT=()
    if ! have_pg; then
        MISSING_PKGS+=(postgresql)
        MISSING_WHAT+=("PostgreSQL >= ${PG_MIN_MAJOR} (initdb under /usr/lib/postgresql/*/bin)")
    fi
    local c
    for c in nginx haproxy git strace; do
        if ! have_cmd "$c"; then
            MISSING_PKGS+=("$c")
            MISSING_WHAT+=("$c")
        fi
    done
    if ! python_can_venv; then
        MISSING_PKGS+=(python3-venv)
        MISSING_WHAT+=("python3-venv (for $PYTHON -m venv)")
    fi
}

join() {
    local out="" x
    for x in "$@"; do out+="${out:+, }$x"; done
    printf '%s' "$out"
}

# Best-effort: stop and disable system services a package may have started.
# Containers often lack systemd, so every command here may fail harmlessly.
quiesce_services() {
    local svc
    for svc in nginx haproxy postgresql; do
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            systemctl stop "$svc" >/dev/null 2>&1 || true
            systemctl disable "$svc" >/dev/null 2>&1 || true
        else
            if [ -x "/etc/init.d/$svc" ]; then
                service "$svc" stop >/dev/null 2>&1 || "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
            fi
            if command -v update-rc.d >/dev/null 2>&1; then
                update-rc.d "$svc" disable >/dev/null 2>&1 || true
            fi
        fi
    done
    # Debian's cluster wrapper, in case the postgresql "main" cluster is still up.
    if command -v pg_ctlcluster >/dev/null 2>&1 && command -v pg_lsclusters >/dev/null 2>&1; then
        local ver name
        while read -r ver name _; do
            pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        done < <(pg_lsclusters -h 2>/dev/null || true)
    fi
}

apt_install() {
    local policy=/usr/sbin/policy-rc.d created_policy=0
    # Keep invoke-rc.d from starting services during the install (the standard
    # Debian mechanism; exit 101 = "action forbidden"). Only if none exists.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created_policy=1
        # shellcheck disable=SC2064
        trap "rm -f '$policy'" EXIT
    fi
    log "installing: $*"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
    if [ "$created_policy" = 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    quiesce_services
}

find_missing
if [ "${#MISSING_PKGS[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt_install "${MISSING_PKGS[@]}"
        find_missing
    else
        echo "install-system: missing $(join "${MISSING_WHAT[@]}"); as root run: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${MISSING_PKGS[*]}" >&2
        exit 1
    fi
fi

if [ "${#MISSING_PKGS[@]}" -gt 0 ]; then
    echo "install-system: still missing after apt-get install: $(join "${MISSING_WHAT[@]}")." >&2
    exit 1
fi
