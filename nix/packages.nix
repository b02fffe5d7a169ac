# The flake's packages for one build system: the static daemon (`default`, also
# `voipms-xmpp`), `mock-voipms`, and the daemon cross-built, statically too, for the other
# supported CPUs (`voipms-xmpp-aarch64`, `voipms-xmpp-x86_64`, `voipms-xmpp-armv7l`). ring's C
# and assembly parts are compiled by the target's C compiler, which the cross stdenv provides.
{ pkgs }:
let
  inherit (pkgs) lib;

  voipms-xmpp = pkgs.pkgsStatic.callPackage ./package.nix { };

  # Static builds for each CPU; the build machine's own is `default`.
  cross = {
    x86_64 = pkgs.pkgsCross.gnu64.pkgsStatic;
    aarch64 = pkgs.pkgsCross.aarch64-multiplatform.pkgsStatic;
    armv7l = pkgs.pkgsCross.armv7l-hf-multiplatform.pkgsStatic;
  };
  native = pkgs.stdenv.hostPlatform.parsed.cpu.name;
in
{
  default = voipms-xmpp;
  inherit voipms-xmpp;
  mock-voipms = pkgs.pkgsStatic.callPackage ./mock-voipms.nix { };
}
// lib.mapAttrs' (cpu: target: {
  name = "voipms-xmpp-${cpu}";
  value = target.callPackage ./package.nix { };
}) (lib.filterAttrs (cpu: _: cpu != native) cross)
