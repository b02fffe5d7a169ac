# mock-voipms, the workspace's mock of the VoIP.ms REST API (mock-voipms/README.md), for other
# projects' CI and for the NixOS VM test. Its control API is unauthenticated: bind it to
# loopback.
{
  lib,
  rustPlatform,
}:
let
  workspace = lib.importTOML ../Cargo.toml;
  manifest = lib.importTOML ../mock-voipms/Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "mock-voipms";
  inherit (workspace.workspace.package) version;

  src = import ./source.nix { inherit lib; };
  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [
    "-p"
    "mock-voipms"
  ];

  # Tested with the rest of the workspace in the flake check `cargo-test`.
  doCheck = false;

  meta = {
    inherit (manifest.package) description;
    homepage = workspace.workspace.package.repository;
    license = lib.licenses.mit;
    mainProgram = "mock-voipms";
    platforms = lib.platforms.linux;
  };
}
