# NixOS module: services.voipms-xmpp, the XMPP (XEP-0114 component) ⇄ VoIP.ms SMS/MMS gateway.
#
# The configuration is rendered by nix/config.nix (secrets become systemd credentials, never
# store paths) and the unit's lifecycle and sandbox come from nix/hardening.nix, which the plain
# unit docs/voipms-xmpp.service shares. Usage and options: docs/nixos.md.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.voipms-xmpp;

  settingsFormat = pkgs.formats.json { };

  rendered = import ./config.nix {
    inherit (cfg) settings;
    xmppSecretFile = cfg.xmpp.secretFile;
    voipmsApiPasswordFile = cfg.voipms.apiPasswordFile;
    webhookKeyFile = cfg.webhook.keyFile;
  };

  rawConfigFile = settingsFormat.generate "voipms-xmpp.json" rendered.config;

  # The daemon's own check at build time, with placeholder secrets under the credential names,
  # so that a bad key, DID or JID fails `nixos-rebuild` rather than the service's start.
  configFile =
    if cfg.checkConfig then
      pkgs.runCommand "voipms-xmpp.json"
        {
          credentials = map (c: c.credential) rendered.credentials;
        }
        ''
          mkdir credentials
          for name in $credentials; do
            echo placeholder > "credentials/$name"
          done
          CREDENTIALS_DIRECTORY=$PWD/credentials ${exe} check --config ${rawConfigFile}
          cp ${rawConfigFile} $out
        ''
    else
      rawConfigFile;

  exe = lib.getExe cfg.package;

  # One section of the daemon's configuration: the well-known keys typed, any other key passed
  # through as it is (a newer daemon's key needs no module change; the daemon rejects unknown
  # keys by name, see `voipms-xmpp check`).
  section =
    description: options:
    lib.mkOption {
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        inherit options;
      };
      default = { };
      inherit description;
    };

  secretFileOption =
    {
      key,
      credential,
      what,
      example,
    }:
    lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      inherit example;
      description = ''
        A file holding ${what} (a trailing newline is ignored). systemd reads it as root when
        the service starts and hands it over as the credential `${credential}`
        (`LoadCredential=`); the configuration refers to it as `"${key}_file": "${credential}"`.
        Keep it outside the Nix store, e.g. with agenix, sops-nix or a root-only file.
        Required.
      '';
    };

  isLoopback =
    listen:
    lib.hasPrefix "127." listen || lib.hasPrefix "[::1]:" listen || lib.hasPrefix "localhost:" listen;
in
{
  options.services.voipms-xmpp = {
    enable = lib.mkEnableOption "voipms-xmpp, an XMPP component (XEP-0114) that carries SMS and MMS through VoIP.ms";

    package = lib.mkPackageOption pkgs "voipms-xmpp" { };

    settings = lib.mkOption {
      description = ''
        The daemon's configuration, rendered to its JSON file; every key is documented in
        docs/configuration.md. The keys below are typed with the daemon's defaults; others
        pass through unchanged, e.g. `metrics.listen = "127.0.0.1:9108"`, which serves
        `GET /healthz` and `GET /metrics` there (absent: nothing is served).

        The secrets (`xmpp.secret`, `voipms.api_password`, `webhook.key`) must not be set here,
        since the file lands in the world-readable Nix store: use
        [](#opt-services.voipms-xmpp.xmpp.secretFile),
        [](#opt-services.voipms-xmpp.voipms.apiPasswordFile) and
        [](#opt-services.voipms-xmpp.webhook.keyFile).
      '';
      default = { };
      example = lib.literalExpression ''
        {
          xmpp.component = "sms.example.com";
          voipms.api_username = "john@example.com";
          webhook.listen = "127.0.0.1:8080";
          jid_map = {
            "alice@example.com" = [ "+15552345678" ];
            "bob@example.com" = [ "+15557654321" "+15553334444" ];
          };
          metrics.listen = "127.0.0.1:9108";
        }
      '';
      type = lib.types.submodule {
        freeformType = settingsFormat.type;
        options = {
          xmpp = section "The component connection to the XMPP server (XEP-0114)." {
            component = lib.mkOption {
              type = lib.types.str;
              example = "sms.example.com";
              description = ''
                The component's domain. It must match the XMPP server's `Component` (Prosody)
                or `ejabberd_service` host; contacts are `+1NXXNXXXXXX@` this domain.
              '';
            };
            server = lib.mkOption {
              type = lib.types.str;
              default = "127.0.0.1:5347";
              example = "[::1]:5347";
              description = ''
                The XMPP server's component port, `host:port`. The component protocol is not
                encrypted: keep the server on the same host or a trusted network.
              '';
            };
            keepalive_secs = lib.mkOption {
              type = lib.types.ints.between 1 3600;
              default = 60;
              description = ''
                Seconds between XEP-0199 pings to the XMPP server; a ping unanswered within
                half of this marks the connection dead, and it is dialled again.
              '';
            };
            ping_to = lib.mkOption {
              type = lib.types.nullOr lib.types.str;
              default = null;
              example = "xmpp.example.net";
              description = ''
                The XMPP server's own domain, where the keepalive pings go. Unset, the daemon
                uses the domain the component lives under (`example.com` for
                `sms.example.com`); it is required when that is not a domain the server hosts.
              '';
            };
          };

          voipms = section "The VoIP.ms REST API account." {
            api_username = lib.mkOption {
              type = lib.types.str;
              example = "john@example.com";
              description = "The e-mail address you log in to voip.ms with.";
            };
            api_url = lib.mkOption {
              type = lib.types.str;
              default = "https://voip.ms/api/v1/rest.php";
              description = ''
                The REST endpoint (`http://` or `https://`; host `www.voip.ms` is refused, its
                redirect drops request bodies). Tests point it at mock-voipms.
              '';
            };
            timeout_secs = lib.mkOption {
              type = lib.types.ints.between 1 600;
              default = 30;
              description = "How long to wait for the answer to one API call.";
            };
            retry_for_secs = lib.mkOption {
              type = lib.types.ints.between 1 2592000;
              default = 86400;
              description = ''
                How long a message is retried through transient VoIP.ms failures before its
                sender gets an error.
              '';
            };
            backfill_interval_secs = lib.mkOption {
              type = lib.types.ints.between 0 86400;
              default = 600;
              description = ''
                How often (and at start) VoIP.ms is asked for received messages that no
                webhook brought; `0` turns this off.
              '';
            };
          };

          webhook = section "Where VoIP.ms delivers received messages." {
            listen = lib.mkOption {
              type = lib.types.str;
              default = "127.0.0.1:8080";
              example = "[::]:8080";
              description = ''
                `ip:port` on which VoIP.ms's SMS/MMS webhook is served. The default suits a
                TLS-terminating reverse proxy on the same host. A port below 1024 keeps
                `CAP_NET_BIND_SERVICE` (and turns off `PrivateUsers=`).
              '';
            };
            path = lib.mkOption {
              type = lib.types.str;
              default = "/voipms";
              description = "The webhook's URL path; it must start with `/`.";
            };
          };

          jid_map = lib.mkOption {
            type = lib.types.attrsOf (lib.types.listOf lib.types.str);
            example = {
              "alice@example.com" = [ "+15552345678" ];
              "bob@example.com" = [
                "+15557654321"
                "+15553334444"
              ];
            };
            description = ''
              Who owns which DIDs: bare JID → list of DIDs (`+1NXXNXXXXXX`, `1NXXNXXXXXX` or
              `NXXNXXXXXX`); the first is the user's default. Only these JIDs may send, and
              only from their own DIDs; a DID belongs to one user only.
            '';
          };

          state_dir = lib.mkOption {
            type = lib.types.str;
            default = "/var/lib/voipms-xmpp";
            description = ''
              The spool. It must lie below `/var/lib/`: the rest becomes the unit's
              `StateDirectory=`, which systemd creates, with mode 0700, for the service's
              dynamic user.
            '';
          };
        };
      };
    };

    xmpp.secretFile = secretFileOption {
      key = "secret";
      credential = "xmpp-secret";
      what = "the component secret shared with the XMPP server";
      example = "/run/agenix/voipms-xmpp-component-secret";
    };

    voipms.apiPasswordFile = secretFileOption {
      key = "api_password";
      credential = "voipms-api-password";
      what = "the VoIP.ms API password (set at Main Menu → SOAP and REST/JSON API, not the portal password)";
      example = "/run/agenix/voipms-api-password";
    };

    webhook.keyFile = secretFileOption {
      key = "key";
      credential = "webhook-key";
      what = "the key VoIP.ms sends as `?key=` with each webhook";
      example = "/run/agenix/voipms-webhook-key";
    };

    checkConfig = lib.mkOption {
      type = lib.types.bool;
      default = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
      defaultText = lib.literalExpression "pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform";
      description = ''
        Whether to validate the configuration with `voipms-xmpp check` when it is built, with
        placeholder secrets (the real ones are read, and checked again, when the service
        starts). Needs a build machine that can run the package.
      '';
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = ''
        Whether to open the webhook's TCP port, taken from `settings.webhook.listen`, in the
        firewall. Not needed behind a reverse proxy on the same host.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = map (message: {
      assertion = false;
      inherit message;
    }) rendered.problems;

    warnings = lib.optional (cfg.openFirewall && isLoopback cfg.settings.webhook.listen) ''
      services.voipms-xmpp.openFirewall is set, but the webhook listens on a loopback address
      (${cfg.settings.webhook.listen}), which the firewall does not govern.
    '';

    networking.firewall.allowedTCPPorts = lib.mkIf (
      cfg.openFirewall && rendered.webhookPort != null && rendered.webhookPort != 0
    ) [ rendered.webhookPort ];

    systemd.services.voipms-xmpp = {
      description = "XMPP to SMS/MMS gateway for VoIP.ms";
      documentation = [ "https://github.com/voipms-xmpp/voipms-xmpp/blob/main/docs/configuration.md" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      # Ordering only: the gateway retries the XMPP server by itself, but starting after a
      # local one spares a round of failed connections in the log.
      after = [
        "network-online.target"
      ]
      ++ lib.optional config.services.prosody.enable "prosody.service"
      ++ lib.optional config.services.ejabberd.enable "ejabberd.service";

      serviceConfig =
        import ./hardening.nix {
          inherit (rendered) bindsPrivilegedPort;
          stateDirectory =
            if rendered.stateDirectory != null then rendered.stateDirectory else "voipms-xmpp";
        }
        // {
          # Every problem of the configuration (and an unreadable credential) is reported by
          # name before the gateway starts; `run` repeats the check.
          ExecStartPre = "${exe} check --config ${configFile}";
          ExecStart = "${exe} run --config ${configFile}";
          LoadCredential = rendered.loadCredential;
        };
    };
  };

  meta.maintainers = [ ];
}
