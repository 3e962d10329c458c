#!/usr/bin/env bash
# Starts a throw-away OpenSSH server for the scheduler's ssh back-end tests: Debian's sshd, a
# dedicated config, host key and client key generated in a temporary directory, loopback only.
# Source it: it exports IPP_TEST_SSH_HOST, IPP_TEST_SSH_PORT, IPP_TEST_SSH_USER and
# IPP_TEST_SSH_KEY, and defines stop_test_sshd. sshd must run as root (it switches users).
set -euo pipefail

if [ ! -x /usr/sbin/sshd ]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/install-test-deps.sh"
fi

SSH_TEST_DIR=$(mktemp -d /tmp/ipp-test-sshd.XXXXXX)
chmod 700 "$SSH_TEST_DIR"
ssh-keygen -q -t ed25519 -N '' -f "$SSH_TEST_DIR/host_key" >/dev/null
ssh-keygen -q -t ed25519 -N '' -f "$SSH_TEST_DIR/client_key" >/dev/null
cp "$SSH_TEST_DIR/client_key.pub" "$SSH_TEST_DIR/authorized_keys"
chmod 600 "$SSH_TEST_DIR/authorized_keys"
# The privilege-separation directory sshd insists on.
mkdir -p /run/sshd && chmod 755 /run/sshd
SSH_TEST_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

cat >"$SSH_TEST_DIR/sshd_config" <<EOF
Port $SSH_TEST_PORT
ListenAddress 127.0.0.1
HostKey $SSH_TEST_DIR/host_key
PidFile $SSH_TEST_DIR/sshd.pid
AuthorizedKeysFile $SSH_TEST_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 100
MaxStartups 100:30:200
PrintMotd no
AcceptEnv none
EOF

/usr/sbin/sshd -f "$SSH_TEST_DIR/sshd_config" -E "$SSH_TEST_DIR/sshd.log" \
  || { cat "$SSH_TEST_DIR/sshd.log" 2>/dev/null; exit 1; }
# Wait until it answers (a few tenths of a second), at most 10 s.
for _ in $(seq 1 100); do
  if ssh -q -p "$SSH_TEST_PORT" -i "$SSH_TEST_DIR/client_key" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 "$(id -un)@127.0.0.1" true 2>/dev/null; then
    break
  fi
  sleep 0.1
done

export IPP_TEST_SSH_HOST=127.0.0.1
export IPP_TEST_SSH_PORT=$SSH_TEST_PORT
export IPP_TEST_SSH_USER
IPP_TEST_SSH_USER=$(id -un)
export IPP_TEST_SSH_KEY=$SSH_TEST_DIR/client_key
echo "== test sshd $(/usr/sbin/sshd -V 2>&1 | head -1 | cut -d, -f1) on 127.0.0.1:$SSH_TEST_PORT (key $IPP_TEST_SSH_KEY)"

stop_test_sshd() {
  if [ -f "$SSH_TEST_DIR/sshd.pid" ]; then kill "$(cat "$SSH_TEST_DIR/sshd.pid")" 2>/dev/null || true; fi
  rm -rf "$SSH_TEST_DIR"
}
