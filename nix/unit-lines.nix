# Renders a serviceConfig attribute set as unit-file lines, the way NixOS does
# (attrsToSection and toOption in nixos/lib/systemd-lib.nix): keys in attribute-name order,
# `true`/`false` for booleans, one line per element of a list, anything else through toString.
# `.ci/nix-check` compares `unitLines (import ./hardening.nix { })` with the plain unit.
#
# Pure: no nixpkgs.
let
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
in
serviceConfig:
builtins.concatLists (
  map (
    name:
    let
      value = serviceConfig.${name};
    in
    map (x: "${name}=${toOption x}") (if builtins.isList value then value else [ value ])
  ) (builtins.attrNames serviceConfig)
)
