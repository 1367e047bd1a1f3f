# Shared settings of the network-namespace "hosts" (sourced by hosts-up, hosts-down,
# launch-agent and two-host-train; not run on its own).
#
# Host i (1-based) is the network namespace ${DTRAIN_NETNS_PREFIX}i with address
# ${DTRAIN_NETNS_NET}.$((10 + i)) on its eth0, one end of a veth pair whose other end is a port of
# the bridge ${DTRAIN_NETNS_BRIDGE} in the root namespace (address ${DTRAIN_NETNS_NET}.1, where
# mpirun runs). All names and addresses can be overridden from the environment, for example to
# keep two sets apart; the defaults are what the tests use.

DTRAIN_NETNS_PREFIX="${DTRAIN_NETNS_PREFIX:-dtrain-h}"
DTRAIN_NETNS_BRIDGE="${DTRAIN_NETNS_BRIDGE:-dtrain-br0}"
# First three octets of the /24 the hosts live on.
DTRAIN_NETNS_NET="${DTRAIN_NETNS_NET:-10.77.0}"
DTRAIN_NETNS_CIDR="${DTRAIN_NETNS_NET}.0/24"
# Where hosts-up writes the hostfile by default.
DTRAIN_NETNS_HOSTFILE="${DTRAIN_NETNS_HOSTFILE:-/run/dtrain-netns/hostfile}"
# Most hosts one set may have (addresses .11 to .(10 + max)).
DTRAIN_NETNS_MAX=200

netns_fail() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# Exits with a clear message unless this process may create namespaces and links.
netns_require_root() {
    command -v ip >/dev/null 2>&1 || netns_fail "no 'ip' command (install iproute2)"
    ip netns list >/dev/null 2>&1 || netns_fail "'ip netns' is not available (iproute2 without netns support?)"
    if [ "$(id -u)" -ne 0 ]; then
        netns_fail "must run as root (network namespaces, veth pairs and a bridge are created); try sudo $0"
    fi
}

# Root-side veth of host i: ${DTRAIN_NETNS_VETH}i (at most 15 characters in all).
DTRAIN_NETNS_VETH="${DTRAIN_NETNS_VETH:-dtrain-v}"
netns_veth() { echo "${DTRAIN_NETNS_VETH}$1"; }

# Namespaces of this set that exist now (their names, one a line).
netns_existing() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${DTRAIN_NETNS_PREFIX}[0-9]+\$" || true
}
