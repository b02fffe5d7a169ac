# `nix develop`: the Rust toolchain with clippy, rustfmt and cargo-nextest, Prosody and
# slixmpp for trying the gateway with a real server and client, and the Nix formatter.
{ pkgs }:
pkgs.mkShell {
  packages = [
    pkgs.cargo
    pkgs.rustc
    pkgs.clippy
    pkgs.rustfmt
    pkgs.cargo-nextest
    pkgs.prosody
    (pkgs.python3.withPackages (ps: pkgs.lib.optional (ps ? slixmpp) ps.slixmpp))
    pkgs.nixfmt
  ];

  # For rust-analyzer, when the editor brings it.
  RUST_SRC_PATH = "${pkgs.rustPlatform.rustLibSrc}";
}
