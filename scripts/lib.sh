# Sourced by the measurement scripts: a scratch folder and the processes they start, both
# gone on exit, and free loopback ports.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# server_config FILE LOG SIM_URL [EXTRA_TOML]: a `reelay serve` configuration for measuring:
# rate limits off, frames off, local media, one sandbox channel at SIM_URL.
server_config() {
    cat > "$1" <<TOML
log = "$2"
sandbox = false
admin_token = "bench-admin-token-0123456789"
secret_key = "$(printf 'cd%.0s' {1..32})"
default_account_credits = 1000000000
outbound_allow_cidrs = "127.0.0.1/32"
[limits]
requests_per_second = 0
${4:-}
[media]
derive_frames = false
[[channels]]
name = "sim"
kind = "sandbox"
base_url = "$3"
TOML
}
