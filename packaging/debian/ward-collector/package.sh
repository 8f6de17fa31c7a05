# Metadata for the ward-collector package, read by packaging/build-debs.
SECTION=net
SHORT="safeguarding alert collector and review UI for schools"
LONG="Ward's collector receives safeguarding alerts, heartbeats and identity from
ward-agent workstations and ward-resolver DNS servers, serves the review web UI
where IT and the Designated Safeguarding Lead work the daily alert queue, holds
the filter policy with its change-control log, and keeps the audit log and
retention. It embeds SQLite; trusts may use PostgreSQL."
BIN=ward-collector
# The example in config/ with these top-level settings changed; the policy file belongs to
# ward-resolver, so the collector's policy setting is left out (set it to /etc/ward/policy.toml when
# both run on one server).
CONFIGS="config/collector.toml:/etc/ward/collector.toml:listen=\"0.0.0.0:8443\"|data_dir=\"/var/lib/ward/collector\"|policy="
FILES="packaging/systemd/ward-collector.service:/lib/systemd/system/ward-collector.service
packaging/systemd/ward-collector-http.socket:/lib/systemd/system/ward-collector-http.socket
packaging/systemd/ward-collector-https.socket:/lib/systemd/system/ward-collector-https.socket"
UNITS="ward-collector.service ward-collector-http.socket ward-collector-https.socket"
START_UNITS="ward-collector-http.socket ward-collector-https.socket ward-collector.service"
STATE=/var/lib/ward/collector
PRIVATE_CONFIGS="/etc/ward/collector.toml"
PURGE_DEFAULT=false
PURGE_WHAT="This is the collector's database: every safeguarding alert, screenshot,
 note, audit record and report, the certificate authority that enrolled the
 school's devices, and user accounts. Schools must keep safeguarding records
 for their retention period."
CHECK='    if ward-collector --help 2>&1 | grep -q -- --check-config; then
        run_check ward-collector --check-config --config /etc/ward/collector.toml
    fi'
NOTICE='        if [ ! -e "$STATE_DIR/ward.db" ] && [ -z "$2" ]; then
            echo "ward-collector: on its first start the collector writes the one-time admin password to" >&2
            echo "ward-collector: $STATE_DIR/initial-admin-password (readable by root only)." >&2
        fi'
