# The flake's checks for one system (`nix flake check`):
#
#   cargo-test    the workspace's test suite (nix/cargo-test.nix)
#   nix-check     .ci/nix-check in the build sandbox, with the static binary: the pure tests,
#                 the example configuration validated by `voipms-xmpp check`, the plain unit's
#                 shared block against nix/hardening.nix, and its systemd-analyze exposure
#   module-unit   the NixOS module evaluated on a small configuration: no failed assertion,
#                 and the unit it writes rated at most 2.0 by systemd-analyze
#   NAME          a NixOS VM test for each nix/tests/NAME.nix (basic: Prosody, mock-voipms
#                 and the module, one SMS each way)
{
  pkgs,
  self,
  nixpkgs,
}:
let
  inherit (pkgs) lib;
  inherit (pkgs.stdenv.hostPlatform) system;
  packages = self.packages.${system};
  nixosModule = self.nixosModules.default;

  vmTests = lib.mapAttrs' (file: _: {
    name = lib.removeSuffix ".nix" file;
    value = pkgs.testers.runNixOSTest (import (./tests + "/${file}") { inherit nixosModule packages; });
  }) (lib.filterAttrs (file: type: type == "regular" && lib.hasSuffix ".nix" file) (builtins.readDir ./tests));

  moduleEval = nixpkgs.lib.nixosSystem {
    modules = [
      nixosModule
      {
        nixpkgs.hostPlatform = system;
        # Nothing to boot: no boot loader or file systems to declare.
        boot.isContainer = true;
        system.stateVersion = lib.trivial.release;
        services.prosody.enable = true;
        services.voipms-xmpp = {
          enable = true;
          settings = {
            xmpp.component = "sms.example.com";
            voipms.api_username = "john@example.com";
            jid_map."alice@example.com" = [ "+15552345678" ];
          };
          xmpp.secretFile = "/run/keys/voipms-xmpp/component-secret";
          voipms.apiPasswordFile = "/run/keys/voipms-xmpp/api-password";
          webhook.keyFile = "/run/keys/voipms-xmpp/webhook-key";
        };
      }
    ];
  };
  moduleFailures = map (a: a.message) (
    lib.filter (a: !a.assertion && lib.hasPrefix "services.voipms-xmpp" a.message) moduleEval.config.assertions
  );
in
vmTests
// {
  cargo-test = pkgs.pkgsStatic.callPackage ./cargo-test.nix { };

  nix-check =
    pkgs.runCommand "voipms-xmpp-nix-check"
      {
        src = lib.fileset.toSource {
          root = ../.;
          fileset = lib.fileset.unions [
            ../.ci/nix-check
            ../flake.nix
            ../nix
            ../docs/voipms-xmpp.service
          ];
        };
        nativeBuildInputs = [
          pkgs.nix
          pkgs.python3
          pkgs.systemd
        ];
      }
      ''
        cp -r "$src" source
        chmod -R u+w source
        # Nix evaluates only (`--store dummy://`), but wants somewhere to keep its state.
        export HOME=$TMPDIR/home NIX_STATE_DIR=$TMPDIR/nix/state NIX_LOG_DIR=$TMPDIR/nix/log \
          NIX_CONF_DIR=$TMPDIR/nix/etc
        mkdir -p "$HOME" "$NIX_STATE_DIR" "$NIX_LOG_DIR" "$NIX_CONF_DIR"
        bash source/.ci/nix-check ${lib.getExe packages.default}
        touch $out
      '';

  module-unit =
    pkgs.runCommand "voipms-xmpp-module-unit"
      {
        nativeBuildInputs = [ pkgs.systemd ];
        failures = builtins.toJSON moduleFailures;
        unit = "${moduleEval.config.systemd.units."voipms-xmpp.service".unit}/voipms-xmpp.service";
      }
      ''
        if [ "$failures" != "[]" ]; then
          echo "failed assertions: $failures"
          exit 1
        fi
        cat "$unit"
        systemd-analyze security --offline=yes --threshold=20 "$unit"
        touch $out
      '';
}
