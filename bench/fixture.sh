# Sourced by bench/variants.sh and bench/order.sh: the Debian launch of
# bench/run.sh's table (a) in a work dir.
#
#   debian_fixture WORK ACCOUNT
#
# writes WORK/imapd, WORK/imapd-ssl (Debian 12's, bench/fixtures/) and
# WORK/run (layout=debian, envdir ./env, the account, softlimit -m 50000000,
# server /bin/true). As bench/run.sh: the TLS cache in the work dir (Debian's
# /var/lib/courier belongs to courier, and courier-run refuses to reset a
# cache for another account there), and a certificate the account can read
# (a launch of a STARTTLS service checks TLS_CERTFILE as the account).
debian_fixture() {
  local work=$1 acct=$2
  cp "$root/bench/fixtures/imapd" "$root/bench/fixtures/imapd-ssl" "$work/"
  printf 'TLS_CACHEFILE=%s/tlscache\n' "$work" >> "$work/imapd-ssl"
  chmod 711 "$work"
  cp "$root/tests/fixtures/tls/server.pem" "$work/server.pem"
  chgrp "$acct" "$work/server.pem" && chmod 640 "$work/server.pem"
  printf '\nTLS_CERTFILE=%s/server.pem\n' "$work" >> "$work/imapd-ssl"
  cat > "$work/run" <<EOR
layout=debian
config="./imapd ./imapd-ssl"
envdir=./env
account=$acct
softlimit="-m 50000000"
server=/bin/true
banner=no
wait_authdaemond=no
EOR
}
