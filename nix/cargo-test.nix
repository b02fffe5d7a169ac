# The flake check `cargo-test`: the workspace's test suite, the README's test command
# `cargo test --workspace` (offline and frozen to Cargo.lock), built with the same toolchain as
# the package. It covers the unit and scenario tests, the fuzz corpus replay and the end-to-end
# tests, which spawn the built binaries and bind 127.0.0.1 ports (the build sandbox has a
# loopback interface).
{
  lib,
  rustPlatform,
  procps,
}:
let
  manifest = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "voipms-xmpp-tests";
  inherit (manifest.workspace.package) version;

  src = import ./source.nix { inherit lib; };
  cargoLock.lockFile = ../Cargo.lock;

  # Nothing to build or install beyond what `cargo test` builds: the check phase is the point.
  dontCargoBuild = true;
  dontCargoInstall = true;
  installPhase = ''
    runHook preInstall
    touch $out
    runHook postInstall
  '';

  doCheck = true;
  # The debug profile, as `cargo test` uses by default: the release profile's LTO would only
  # make the check slower.
  checkType = "debug";
  cargoTestFlags = [ "--workspace" ];
  # The end-to-end harness stops the gateway with kill(1), which coreutils does not install.
  nativeCheckInputs = [ procps ];

  meta = {
    description = "The test suite of voipms-xmpp and mock-voipms";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
  };
}
