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
# What the tests use besides: the shells whose completions are tested,
# man(1) to render the pages, and mail(1) for the sendmail entry.
# shellcheck disable=SC2034
TEST_PACKAGES=(zsh fish man-db groff-base bsd-mailx)

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || {
        echo "cargo not found: install Rust 1.95 or newer with rustup" >&2
        exit 69
    }
}

# The corpus tier: every corpus test finds the corpora through
# MAILBOT_CORPORA (tests/support/corpora.rs), so settle it once, as an
# absolute path: the variable as given, else ../shared/corpora when it
# exists. Without corpora, one line says the corpus tests are skipped,
# or, with MAILBOT_REQUIRE_CORPORA set, the script stops (66).
settle_corpora() {
    if [ -z "${MAILBOT_CORPORA:-}" ] && [ -d ../shared/corpora ]; then
        MAILBOT_CORPORA=../shared/corpora
    fi
    if [ -n "${MAILBOT_CORPORA:-}" ]; then
        [ -d "$MAILBOT_CORPORA" ] || {
            echo "${0##*/}: MAILBOT_CORPORA=$MAILBOT_CORPORA: not a folder" >&2
            exit 66
        }
        MAILBOT_CORPORA=$(cd "$MAILBOT_CORPORA" && pwd)
        export MAILBOT_CORPORA
    elif [ -n "${MAILBOT_REQUIRE_CORPORA:-}" ] && [ "$MAILBOT_REQUIRE_CORPORA" != 0 ]; then
        echo "${0##*/}: MAILBOT_REQUIRE_CORPORA is set but there are no corpora (set MAILBOT_CORPORA)" >&2
        exit 66
    else
        unset MAILBOT_CORPORA
        echo "corpus tests skipped: no corpora (set MAILBOT_CORPORA)"
    fi
}

# Starts the Postfix + Dovecot rig of scripts/mailserver in a throwaway
# folder, stopped and removed when the calling script exits, and exports
# its MAILBOT_TEST_* variables; a rig test that finds no rig then fails
# instead of skipping (MAILBOT_REQUIRE_RIG).
start_rig() {
    RIG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mailbot-rig.XXXXXX")
    trap 'scripts/mailserver stop "$RIG_DIR" >/dev/null 2>&1 || true; rm -rf "$RIG_DIR"' EXIT
    scripts/mailserver start "$RIG_DIR"
    eval "$(scripts/mailserver env "$RIG_DIR")"
    export MAILBOT_REQUIRE_RIG=1
}
