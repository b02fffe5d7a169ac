{
  description = "voipms-xmpp: an XMPP component (XEP-0114) that carries SMS and MMS through VoIP.ms";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # Thin: everything lives in nix/ (see docs/nixos.md).
  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: import ./nix/packages.nix { inherit pkgs; });

      # The module, with the package defaulting to this flake's static build.
      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.voipms-xmpp.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      checks = forAllSystems (pkgs: import ./nix/checks.nix { inherit pkgs self nixpkgs; });

      devShells = forAllSystems (pkgs: {
        default = import ./nix/devshell.nix { inherit pkgs; };
      });

      # nixfmt is the RFC 166 style formatter (formerly nixfmt-rfc-style).
      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
