# Metadata for the ward-resolver package, read by packaging/build-debs.
SECTION=net
SHORT="DNS filtering resolver for schools, by filter tier"
LONG="Ward's resolver answers every DNS query by the filter policy of the tier of
whoever asks (staff, pupil, byod-strict or the school's own tiers): category
blocking, locked safe search, DoH/VPN/Private Relay bypass protection and
illegal-content lists that no tier or administrator can lift. Enrolled with a
ward-collector it follows the collector's approved policy and keeps filtering
with the last good copy when the collector is away."
BIN=ward-resolver
# Files installed from the repository: source -> destination (conffiles are everything under /etc).
# The shipped configuration is the example in config/ with these top-level settings changed (a
# setting the example lost fails the build, so the two cannot drift apart silently).
CONFIGS="config/resolver.toml:/etc/ward/resolver.toml:listen=[\"0.0.0.0:53\"]|state_dir=\"/var/lib/ward/resolver\"
config/policy.toml:/etc/ward/policy.toml:"
FILES="config/lists:/etc/ward/lists
packaging/systemd/ward-resolver.service:/lib/systemd/system/ward-resolver.service"
UNITS="ward-resolver.service"
START_UNITS="ward-resolver.service"
STATE=/var/lib/ward/resolver
PRIVATE_CONFIGS=""
PURGE_DEFAULT=true
PURGE_WHAT="The resolver keeps its enrolment certificate and key and the last policy
 received from the collector there; it holds no one's personal data."
CHECK='    if ward-resolver --help 2>&1 | grep -q -- --check-config; then
        run_check ward-resolver --check-config --config /etc/ward/resolver.toml
    else
        # "check" loads the configuration and its policy before deciding one query.
        run_check ward-resolver check --config /etc/ward/resolver.toml --client 127.0.0.1 localhost
    fi'
NOTICE=""
