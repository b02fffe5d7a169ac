# The arguments nix/config.nix receives for a typical host: what nix/module.nix passes when
# services.voipms-xmpp is configured as in docs/nixos.md, its defaults included.
# `.ci/nix-check` renders it and validates the result with the real binary
# (`voipms-xmpp check`), and the flake check `config` does the same with the Nix build.
#
# Pure: no nixpkgs.
{
  settings = {
    xmpp = {
      component = "sms.example.com";
      server = "127.0.0.1:5347";
      keepalive_secs = 60;
      # Unset optional keys are null in the module's settings; config.nix drops them.
      ping_to = null;
    };
    voipms = {
      api_username = "john@example.com";
      api_url = "https://voip.ms/api/v1/rest.php";
      timeout_secs = 30;
      retry_for_secs = 86400;
      backfill_interval_secs = 600;
    };
    webhook = {
      listen = "127.0.0.1:8080";
      path = "/voipms";
    };
    jid_map = {
      "alice@example.com" = [ "+15552345678" ];
      "bob@example.com" = [
        "+15557654321"
        "+15553334444"
      ];
    };
    state_dir = "/var/lib/voipms-xmpp";
  };
  xmppSecretFile = "/run/keys/voipms-xmpp/component-secret";
  voipmsApiPasswordFile = "/run/keys/voipms-xmpp/api-password";
  webhookKeyFile = "/run/keys/voipms-xmpp/webhook-key";
}
