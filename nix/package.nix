# The daemon, voipms-xmpp. Built with pkgsStatic by the flake, which gives a static musl binary
# with no runtime dependencies (ring's C and assembly parts are compiled by the target's C
# compiler, which the static and cross stdenvs provide).
{
  lib,
  rustPlatform,
}:
let
  manifest = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "voipms-xmpp";
  inherit (manifest.workspace.package) version;

  src = import ./source.nix { inherit lib; };
  cargoLock.lockFile = ../Cargo.lock;

  # The root package only, not the workspace's mock-voipms (nix/mock-voipms.nix).
  cargoBuildFlags = [
    "-p"
    "voipms-xmpp"
  ];

  # The test suite runs once, in the flake check `cargo-test` (nix/cargo-test.nix), rather than
  # again here against this LTO release build.
  doCheck = false;

  meta = {
    inherit (manifest.package) description;
    homepage = manifest.workspace.package.repository;
    license = lib.licenses.mit;
    mainProgram = "voipms-xmpp";
    platforms = lib.platforms.linux;
  };
}
