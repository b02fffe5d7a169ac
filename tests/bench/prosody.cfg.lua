-- Prosody 0.12 for `cargo bench --bench webhook -- --prosody` (tests/bench/prosody.rs).
-- A template: @…@ placeholders are filled in by the bench. Like the interop tier's config it
-- runs from a temporary directory of its own, on loopback ports of its own, with no TLS: the
-- bench's c2s client authenticates with SASL PLAIN over plain TCP on loopback.
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
run_as_root = true   -- without it Prosody, started as root, switches to the user 'prosody'
log = { { levels = { min = "info" }, to = "file", filename = "@DIR@/prosody.log" } }

interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
s2s_ports = { }
component_interfaces = { "127.0.0.1" }
component_ports = { @COMPONENT_PORT@ }
-- Only used when mod_voipms is loaded (it serves its webhook through mod_http).
http_interfaces = { "127.0.0.1" }
http_ports = { @HTTP_PORT@ }
https_ports = { }

c2s_require_encryption = false           -- loopback only: no certificates needed
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "offline"; @MODULES@ }
modules_disabled = { "s2s"; "tls"; }
-- `nagle = false`, or empty (Prosody's default, Nagle on) with the bench's --prosody-nagle.
network_settings = { @NETWORK@ }
@EXTRA@
VirtualHost "localhost"

-- The gateway, or the bench's do-nothing component.
Component "sms.localhost"
    component_secret = "@SECRET@"
    component_conflict_resolve = "kick_old"
