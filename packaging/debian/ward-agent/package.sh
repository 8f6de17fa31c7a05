# Metadata for the ward-agent package, read by packaging/build-debs.
SECTION=admin
SHORT="safeguarding monitor for school workstations"
LONG="Ward's agent watches typed text and window titles on a school workstation
for safeguarding and Prevent phrases; on a match it may take a screenshot for
context (never for sexual or child-abuse categories) and ships an alert to the
school's ward-collector. Raw keystrokes never leave the workstation's memory.
Users are told they are monitored: a notice set by the school shows at logon."
BIN=ward-agent
# The agent's units are written alongside its code (packaging/systemd/ward-agent*.service).
CONFIGS="config/agent.toml:/etc/ward/agent.toml:collector=\"https://ward.school.example:8443\"|wordlists=\"/usr/share/ward/wordlists\"|state_dir=\"/var/lib/ward/agent\""
FILES="wordlists:/usr/share/ward/wordlists"
UNITS=""
START_UNITS=""
for unit in packaging/systemd/ward-agent*.service; do
    [ -e "$unit" ] || continue
    name=$(basename "$unit")
    FILES="$FILES
$unit:/lib/systemd/system/$name"
    case "$name" in *@*) ;; *) UNITS="$UNITS $name"; START_UNITS="$START_UNITS $name" ;; esac
done
STATE=/var/lib/ward/agent
PRIVATE_CONFIGS=""
PURGE_DEFAULT=false
PURGE_WHAT="The agent keeps its device certificate and key and its spool of alerts not
 yet delivered to the collector there."
CHECK='    if ward-agent run --help 2>&1 | grep -q -- --check-config; then
        run_check ward-agent run --check-config --config /etc/ward/agent.toml
    fi'
NOTICE='        if [ -z "$2" ]; then
            echo "ward-agent: enrol this workstation with: ward-agent enrol --collector URL --token TOKEN --ca CA.pem" >&2
        fi'
