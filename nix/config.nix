# From the NixOS module's options to what the unit needs: the daemon's JSON configuration, the
# LoadCredential= list, the StateDirectory= name, the ports it listens on, and the problems that
# the module turns into assertions. nix/module.nix uses it; `.ci/nix-check` evaluates it on
# nix/example.nix and runs `voipms-xmpp check` on the result, and nix/pure-tests.nix tests it.
#
# Secrets never enter the configuration (which lands in the world-readable Nix store): each
# `*File` option becomes a systemd credential `NAME:PATH`, and the configuration names only the
# credential, `"secret_file": "xmpp-secret"`. The daemon resolves a relative `*_file` against
# $CREDENTIALS_DIRECTORY (docs/configuration.md, Secrets).
#
# Pure: no nixpkgs, no store paths.
{
  # services.voipms-xmpp.settings: the daemon's configuration; null means "not set".
  settings,
  # services.voipms-xmpp.xmpp.secretFile and the other two secret options: absolute paths
  # outside the Nix store, read by systemd (as root) when the unit starts.
  xmppSecretFile ? null,
  voipmsApiPasswordFile ? null,
  webhookKeyFile ? null,
}:
let
  inherit (builtins)
    attrNames
    concatMap
    filter
    foldl'
    isAttrs
    listToAttrs
    map
    match
    stringLength
    substring
    ;

  hasPrefix = prefix: s: substring 0 (stringLength prefix) s == prefix;

  # The configuration without nulls, so that an unset optional key is absent, not `null`
  # (which the daemon would refuse as a value of the wrong type).
  stripNulls =
    value:
    if isAttrs value then
      listToAttrs (
        map (name: {
          inherit name;
          value = stripNulls value.${name};
        }) (filter (name: value.${name} != null) (attrNames value))
      )
    else
      value;

  clean = stripNulls settings;

  # The three secrets: where they go in the configuration, the credential that carries them,
  # and the option that names the file.
  secrets = [
    {
      section = "xmpp";
      key = "secret";
      credential = "xmpp-secret";
      option = "services.voipms-xmpp.xmpp.secretFile";
      file = xmppSecretFile;
    }
    {
      section = "voipms";
      key = "api_password";
      credential = "voipms-api-password";
      option = "services.voipms-xmpp.voipms.apiPasswordFile";
      file = voipmsApiPasswordFile;
    }
    {
      section = "webhook";
      key = "key";
      credential = "webhook-key";
      option = "services.voipms-xmpp.webhook.keyFile";
      file = webhookKeyFile;
    }
  ];

  sectionOf = s: clean.${s.section} or { };

  secretProblems =
    s:
    let
      setting = "services.voipms-xmpp.settings.${s.section}.${s.key}";
    in
    (
      if (sectionOf s) ? ${s.key} then
        [
          "${setting} would put the secret into the Nix store, which every local user can read; put it in a file and set ${s.option} instead."
        ]
      else
        [ ]
    )
    ++ (
      if (sectionOf s) ? "${s.key}_file" then
        [
          "${setting}_file is written by the module (the credential name \"${s.credential}\"); set ${s.option} instead."
        ]
      else
        [ ]
    )
    ++ (
      if s.file == null then
        [ "${s.option} must be set: the daemon needs the ${s.section}.${s.key} secret." ]
      else if !hasPrefix "/" s.file then
        [ "${s.option} must be an absolute path, found \"${s.file}\"." ]
      else if hasPrefix "${builtins.storeDir}/" s.file then
        [
          "${s.option} is in the Nix store (\"${s.file}\"), which every local user can read; keep secrets outside it (agenix, sops-nix, systemd-creds, or a root-only file)."
        ]
      else
        [ ]
    );

  given = filter (s: s.file != null) secrets;

  config = foldl' (
    acc: s:
    acc
    // {
      ${s.section} = (acc.${s.section} or { }) // {
        "${s.key}_file" = s.credential;
      };
    }
  ) clean given;

  stateDir = clean.state_dir or null;
  stateDirectory =
    if stateDir != null && hasPrefix "/var/lib/" stateDir then
      substring (stringLength "/var/lib/") (stringLength stateDir) stateDir
    else
      null;
  stateProblems =
    if stateDirectory == null || stateDirectory == "" then
      [
        "services.voipms-xmpp.settings.state_dir must be a directory below /var/lib/ (it becomes the unit's StateDirectory=), found ${builtins.toJSON stateDir}."
      ]
    else
      [ ];

  # The port of an `ip:port` or `[ipv6]:port` value; null when there is none to read (the
  # daemon's check then names the key).
  portOf =
    listen:
    let
      # At most five digits after leading zeros, so that fromJSON reads an integer.
      m = if builtins.isString listen then match ".*:0*([0-9]{1,5})" listen else null;
    in
    if m == null then null else builtins.fromJSON (builtins.head m);

  webhookPort = portOf (clean.webhook.listen or null);
  metricsPort = portOf (clean.metrics.listen or null);
in
{
  inherit config stateDirectory webhookPort;

  # LoadCredential= entries, NAME:PATH.
  loadCredential = map (s: "${s.credential}:${s.file}") given;

  # The credential names, for documentation and for .ci/nix-check's fake credentials.
  credentials = map (s: {
    inherit (s) section key credential option;
  }) secrets;

  # Every port the daemon listens on (the webhook, and metrics when configured).
  ports = filter (p: p != null) [
    webhookPort
    metricsPort
  ];

  # True when one of them needs CAP_NET_BIND_SERVICE.
  bindsPrivilegedPort = builtins.any (p: p != null && p > 0 && p < 1024) [
    webhookPort
    metricsPort
  ];

  # Assertion messages; empty when the configuration is acceptable.
  problems = concatMap secretProblems secrets ++ stateProblems;
}
