# Tests of the pure parts of the packaging (nix/config.nix, nix/hardening.nix,
# nix/unit-lines.nix). Evaluates to the list of failing tests, each with what it evaluated to
# and what was expected; `[ ]` when all pass. Run by `.ci/nix-check` and by the flake check
# `pure`:
#
#   nix-instantiate --eval --strict --json nix/pure-tests.nix
#
# Pure: no nixpkgs.
let
  render = import ./config.nix;
  hardening = import ./hardening.nix;
  unitLines = import ./unit-lines.nix;
  example = import ./example.nix;

  # The example with some settings replaced, one section deep.
  withSettings =
    changes:
    example
    // {
      settings = builtins.mapAttrs (
        name: value:
        if builtins.isAttrs value && builtins.isAttrs (example.settings.${name} or null) then
          example.settings.${name} // value
        else
          value
      ) (example.settings // changes);
    };

  problemsOf = args: (render args).problems;
  hasProblemMentioning =
    needle: args:
    builtins.any (p: builtins.match ".*${needle}.*" p != null) (problemsOf args);

  tests = {
    exampleIsAccepted = {
      expr = problemsOf example;
      expected = [ ];
    };
    secretsBecomeCredentialNames = {
      expr =
        let
          c = (render example).config;
        in
        [
          c.xmpp.secret_file
          c.voipms.api_password_file
          c.webhook.key_file
        ];
      expected = [
        "xmpp-secret"
        "voipms-api-password"
        "webhook-key"
      ];
    };
    loadCredentialPairsNamesWithFiles = {
      expr = (render example).loadCredential;
      expected = [
        "xmpp-secret:/run/keys/voipms-xmpp/component-secret"
        "voipms-api-password:/run/keys/voipms-xmpp/api-password"
        "webhook-key:/run/keys/voipms-xmpp/webhook-key"
      ];
    };
    nullSettingsAreLeftOut = {
      expr = (render example).config.xmpp ? ping_to;
      expected = false;
    };
    otherSettingsPassThrough = {
      expr = (render (withSettings { metrics.listen = "127.0.0.1:9108"; })).config.metrics;
      expected = {
        listen = "127.0.0.1:9108";
      };
    };
    inlineSecretIsRefused = {
      expr = hasProblemMentioning "settings.xmpp.secret would put" (withSettings {
        xmpp.secret = "hunter2";
      });
      expected = true;
    };
    inlinePasswordIsRefused = {
      expr = hasProblemMentioning "settings.voipms.api_password would put" (withSettings {
        voipms.api_password = "hunter2";
      });
      expected = true;
    };
    inlineKeyIsRefused = {
      expr = hasProblemMentioning "settings.webhook.key would put" (withSettings {
        webhook.key = "hunter2";
      });
      expected = true;
    };
    handWrittenSecretFileIsRefused = {
      expr = hasProblemMentioning "settings.webhook.key_file is written by the module" (withSettings {
        webhook.key_file = "/etc/key";
      });
      expected = true;
    };
    missingSecretFilesAreNamed = {
      expr = problemsOf {
        inherit (example) settings;
      };
      expected = [
        "services.voipms-xmpp.xmpp.secretFile must be set: the daemon needs the xmpp.secret secret."
        "services.voipms-xmpp.voipms.apiPasswordFile must be set: the daemon needs the voipms.api_password secret."
        "services.voipms-xmpp.webhook.keyFile must be set: the daemon needs the webhook.key secret."
      ];
    };
    relativeSecretFileIsRefused = {
      expr = hasProblemMentioning "xmpp.secretFile must be an absolute path" (
        example // { xmppSecretFile = "secret"; }
      );
      expected = true;
    };
    secretFileInTheStoreIsRefused = {
      expr = hasProblemMentioning "webhook.keyFile is in the Nix store" (
        example // { webhookKeyFile = "${builtins.storeDir}/aaaa-key"; }
      );
      expected = true;
    };
    stateDirOutsideVarLibIsRefused = {
      expr = hasProblemMentioning "state_dir must be a directory below /var/lib/" (withSettings {
        state_dir = "/srv/voipms-xmpp";
      });
      expected = true;
    };
    stateDirBecomesStateDirectory = {
      expr = (render (withSettings { state_dir = "/var/lib/gateways/sms"; })).stateDirectory;
      expected = "gateways/sms";
    };
    webhookPortIsRead = {
      expr = map (listen: (render (withSettings { webhook.listen = listen; })).webhookPort) [
        "0.0.0.0:8080"
        "[::]:8443"
        "127.0.0.1:0"
        "no port"
      ];
      expected = [
        8080
        8443
        0
        null
      ];
    };
    unprivilegedPortsNeedNoCapability = {
      expr = (render example).bindsPrivilegedPort;
      expected = false;
    };
    webhookBelow1024NeedsTheCapability = {
      expr = (render (withSettings { webhook.listen = "[::]:443"; })).bindsPrivilegedPort;
      expected = true;
    };
    metricsBelow1024NeedsTheCapability = {
      expr = (render (withSettings { metrics.listen = "127.0.0.1:80"; })).bindsPrivilegedPort;
      expected = true;
    };
    portZeroNeedsNoCapability = {
      expr = (render (withSettings { webhook.listen = "127.0.0.1:0"; })).bindsPrivilegedPort;
      expected = false;
    };
    sandboxKeepsNoCapabilities = {
      expr =
        let
          h = hardening { };
        in
        [
          h.CapabilityBoundingSet
          h.PrivateUsers
          (h ? AmbientCapabilities)
        ];
      expected = [
        ""
        true
        false
      ];
    };
    privilegedPortKeepsOnlyBindService = {
      expr =
        let
          h = hardening { bindsPrivilegedPort = true; };
        in
        [
          h.CapabilityBoundingSet
          h.AmbientCapabilities
          h.PrivateUsers
        ];
      expected = [
        [ "CAP_NET_BIND_SERVICE" ]
        [ "CAP_NET_BIND_SERVICE" ]
        false
      ];
    };
    unitLinesAreWrittenAsNixOSWritesThem = {
      expr = unitLines {
        B = true;
        C = false;
        E = "";
        L = [
          "x"
          "~y"
        ];
        N = 2;
        Z = [ ];
      };
      expected = [
        "B=true"
        "C=false"
        "E="
        "L=x"
        "L=~y"
        "N=2"
      ];
    };
  };
in
map
  (name: {
    inherit name;
    inherit (tests.${name}) expr expected;
  })
  (builtins.filter (name: tests.${name}.expr != tests.${name}.expected) (builtins.attrNames tests))
