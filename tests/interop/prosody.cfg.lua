-- Prosody 0.12 for the interop tier (tests/interop/run) and the demo (docs/demo/run).
-- A template: @…@ placeholders are filled in by tests/interop/stack.py. It runs as root
-- from a directory of its own, on loopback ports of its own, with no TLS (plain
-- authentication on loopback only). docs/xmpp-servers.md shows this file and explains it.
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
run_as_root = true   -- CI runs as root; without it Prosody switches to the user 'prosody'
log = { { levels = { min = "@LOG_LEVEL@" }, to = "file", filename = "@DIR@/prosody.log" } }

interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
s2s_ports = { }
component_interfaces = { "127.0.0.1" }   -- the component port faces only this machine
component_ports = { @COMPONENT_PORT@ }

c2s_require_encryption = false           -- loopback only: no certificates needed
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "offline"; }
modules_disabled = { "s2s"; "tls"; }

VirtualHost "localhost"

-- The gateway (voipms-xmpp's xmpp.component and xmpp.secret).
Component "sms.localhost"
    component_secret = "@SECRET@"
    component_conflict_resolve = "kick_old"   -- a reconnect replaces a half-dead old session
