# shellcheck shell=bash
# Shared by the scripts: install what is missing, the one release build.

# Installs the Debian packages named, when any is missing. Needs root (or
# sudo); on a machine with everything installed it does nothing and asks
# for nothing.
ensure_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "installing: ${missing[*]}" >&2
    # Postfix asks which mail set-up to create; the rig writes its own.
    echo "postfix postfix/main_mailer_type select No configuration" | "${sudo[@]}" debconf-set-selections
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# The packages building and testing mailbot needs (used by the scripts that
# source this file).
# shellcheck disable=SC2034
BUILD_PACKAGES=(pkg-config libnotmuch-dev notmuch parallel)

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || {
        echo "cargo not found: install Rust 1.95 or newer with rustup" >&2
        exit 69
    }
}
