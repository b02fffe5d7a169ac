# The source that cargo needs, and nothing else, so that editing docs/, nix/ or a README does
# not rebuild the packages. The tests are part of it: the manifest names their files, and the
# flake check `cargo-test` runs them. Cargo and fuzzing output is left out (a flake only sees
# files tracked by git anyway; this matters for `nix-build` from a work tree).
#
# .cargo/config.toml is left out on purpose: it names Debian's musl and cross C compilers and
# linker for builds without Nix, and as the project's own configuration it would take
# precedence over the one nixpkgs' cargo setup hook writes for the Nix toolchain.
{ lib }:
let
  fs = lib.fileset;
in
fs.toSource {
  root = ../.;
  fileset = fs.difference
    (fs.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../mock-voipms
      ../tests
    ])
    (
      fs.unions (
        map fs.maybeMissing [
          ../target
          ../mock-voipms/target
          ../tests/fuzz/target
          ../tests/fuzz/corpus
          ../tests/fuzz/artifacts
          ../tests/fuzz/coverage
        ]
      )
    );
}
