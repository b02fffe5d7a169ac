# The [Service] settings that the NixOS module (nix/module.nix) and the plain unit for machines
# without Nix (docs/voipms-xmpp.service) share: process lifecycle, state directory and sandbox.
# This file is their only source: `.ci/nix-check` renders it with nix/unit-lines.nix and
# compares the lines with the block between the markers in docs/voipms-xmpp.service.
#
# Pure: no nixpkgs, no store paths, so that it evaluates with a bare `nix-instantiate`.
# Values are written as NixOS writes them into a unit: booleans become `true`/`false`, a list
# becomes one line per element (in order, which matters for SystemCallFilter).
#
# `systemd-analyze security --offline=yes docs/voipms-xmpp.service` rates these settings 1.1
# (systemd 252). What remains exposed is what the gateway needs: the host's network (it talks
# to VoIP.ms and the XMPP server and serves the webhook, so no PrivateNetwork= and no
# IPAddressDeny=), AF_UNIX (sd_notify), the host's root directory, and /dev/rtc read access,
# which ProtectClock= itself adds.
{
  # Whether the webhook or metrics port is below 1024. Binding it needs CAP_NET_BIND_SERVICE,
  # which works only in the host's user namespace, so PrivateUsers= is given up then.
  bindsPrivilegedPort ? false,
  # The StateDirectory= name, below /var/lib; the daemon's state_dir is /var/lib/NAME.
  stateDirectory ? "voipms-xmpp",
}:
{
  # The daemon sends READY=1 once the spool is open and the webhook port bound, and WATCHDOG=1
  # from its event loop; a loop stuck for three minutes is killed and restarted. 180 s: the
  # daemon feeds the watchdog at half of it, early when it is awake anyway, so with the
  # default 60 s keepalive an idle gateway never wakes just for it.
  Type = "notify";
  NotifyAccess = "main";
  WatchdogSec = "180s";
  Restart = "on-failure";
  RestartSec = "5s";

  # A transient user that owns nothing but the spool. With DynamicUser= the directory is
  # /var/lib/private/NAME, reached through the /var/lib/NAME symlink.
  DynamicUser = true;
  StateDirectory = stateDirectory;
  StateDirectoryMode = "0700";
  UMask = "0077";

  CapabilityBoundingSet = if bindsPrivilegedPort then [ "CAP_NET_BIND_SERVICE" ] else "";
  NoNewPrivileges = true;
  PrivateUsers = !bindsPrivilegedPort;
  RestrictSUIDSGID = true;
  RemoveIPC = true;
  KeyringMode = "private";

  # Files: the OS read-only, no home directories, a private /tmp, the state directory (and
  # the credentials systemd places in $CREDENTIALS_DIRECTORY) the only things written.
  ProtectSystem = "strict";
  ProtectHome = true;
  PrivateTmp = true;
  PrivateDevices = true;
  DevicePolicy = "closed";
  PrivateIPC = true;
  PrivateMounts = true;
  ProtectProc = "invisible";
  ProcSubset = "pid";

  # Kernel and host: nothing to change.
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  RestrictRealtime = true;
  RestrictNamespaces = true;

  # TCP to VoIP.ms, to the XMPP server and from webhooks; AF_UNIX for the notify socket.
  RestrictAddressFamilies = [
    "AF_INET"
    "AF_INET6"
    "AF_UNIX"
  ];
  SystemCallArchitectures = "native";
  SystemCallFilter = [
    "@system-service"
    "~@privileged"
    "~@resources"
  ];
  # A refused system call fails with EPERM (and is logged by the caller) instead of killing
  # the process with SIGSYS, which would look like a crash.
  SystemCallErrorNumber = "EPERM";
}
// (
  if bindsPrivilegedPort then
    {
      AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
    }
  else
    { }
)
