# NixOS VM test, for pkgs.testers.runNixOSTest: one machine with Prosody, mock-voipms and the
# services.voipms-xmpp module, and an XMPP user (nix/tests/xmpp_client.py) who sends an SMS
# and receives one.
#
#   nix build .#checks.x86_64-linux.basic          # or: nix flake check
#   nix run .#checks.x86_64-linux.basic.driverInteractive
{ nixosModule, packages }:
let
  # Test secrets. A deployment keeps them out of the store; here they are written to /etc by
  # environment.etc, which is enough to exercise the credential path: root-only files that
  # systemd reads and hands to the services. No trailing newline, so that Prosody's
  # Credential(), which reads the whole file, sees the same secret as the gateway.
  componentSecret = "component-secret-for-tests";
  apiPassword = "secret"; # mock-voipms's default account: john@example.com / secret
  webhookKey = "webhook-key-for-tests";

  did = "5552345678"; # alice's number at (mock) VoIP.ms
  friend = "5559998888"; # the phone she texts with
  friendJid = "+1${friend}@sms.example.com";
in
{
  name = "voipms-xmpp-basic";

  nodes.machine =
    { lib, pkgs, ... }:
    let
      cert = pkgs.runCommand "voipms-xmpp-test-cert" { nativeBuildInputs = [ pkgs.openssl ]; } ''
        mkdir -p $out
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
          -subj /CN=example.com -addext "subjectAltName = DNS:example.com" \
          -keyout $out/key.pem -out $out/cert.pem
      '';

      mockConfig = pkgs.writeText "mock-voipms.json" (
        builtins.toJSON {
          dids = [
            {
              inherit did;
              webhook_enabled = true;
              webhook = "http://127.0.0.1:8080/voipms?key=${webhookKey}";
            }
          ];
        }
      );

      client = pkgs.writers.writePython3Bin "xmpp-test-client" {
        libraries = [ pkgs.python3Packages.slixmpp ];
      } (builtins.readFile ./xmpp_client.py);
    in
    {
      imports = [ nixosModule ];

      environment.systemPackages = [
        pkgs.curl
        pkgs.jq
      ];

      environment.etc = {
        "voipms-xmpp/xmpp-secret" = {
          text = componentSecret;
          mode = "0400";
        };
        "voipms-xmpp/voipms-api-password" = {
          text = apiPassword;
          mode = "0400";
        };
        "voipms-xmpp/webhook-key" = {
          text = webhookKey;
          mode = "0400";
        };
      };

      services.prosody = {
        enable = true;
        # No MUC and no upload service: not what this test is about.
        xmppComplianceSuite = false;
        ssl = {
          cert = "${cert}/cert.pem";
          key = "${cert}/key.pem";
        };
        virtualHosts.example = {
          domain = "example.com";
          enabled = true;
          ssl = {
            cert = "${cert}/cert.pem";
            key = "${cert}/key.pem";
          };
        };
        # The component, its secret read from the systemd credential below (Prosody 13's
        # Credential()). The table form of `Component` returns to the global scope, whatever
        # the module appends after extraConfig.
        extraConfig = ''
          component_ports = { 5347 }
          component_interfaces = { "127.0.0.1" }
          Component "sms.example.com" {
            component_secret = Credential("voipms-component-secret");
            component_conflict_resolve = "kick_old";
          }
        '';
      };
      systemd.services.prosody.serviceConfig.LoadCredential = [
        "voipms-component-secret:/etc/voipms-xmpp/xmpp-secret"
      ];

      systemd.services.mock-voipms = {
        description = "Mock of the VoIP.ms REST API";
        wantedBy = [ "multi-user.target" ];
        before = [ "voipms-xmpp.service" ];
        serviceConfig = {
          ExecStart = "${lib.getExe packages.mock-voipms} --listen 127.0.0.1:8090 --config ${mockConfig}";
          DynamicUser = true;
        };
      };

      services.voipms-xmpp = {
        enable = true;
        settings = {
          xmpp.component = "sms.example.com";
          voipms = {
            api_username = "john@example.com";
            api_url = "http://127.0.0.1:8090/api/v1/rest.php";
          };
          webhook.listen = "127.0.0.1:8080";
          jid_map."alice@example.com" = [ "+1${did}" ];
        };
        xmpp.secretFile = "/etc/voipms-xmpp/xmpp-secret";
        voipms.apiPasswordFile = "/etc/voipms-xmpp/voipms-api-password";
        webhook.keyFile = "/etc/voipms-xmpp/webhook-key";
      };

      # alice: logs in, texts her friend, and waits for the answer (started by the test script).
      systemd.services.xmpp-test-client = {
        description = "alice@example.com, an XMPP user";
        serviceConfig = {
          Type = "exec";
          DynamicUser = true;
          StateDirectory = "xmpp-test-client";
          ExecStart = lib.concatStringsSep " " [
            "${client}/bin/xmpp-test-client"
            "--jid alice@example.com"
            "--password alice-password"
            "--host 127.0.0.1"
            "--ca-file ${cert}/cert.pem"
            "--to ${friendJid}"
            "--body 'hello from xmpp'"
            "--expect-from ${friendJid}"
            "--expect-body 'hello from sms'"
            "--received /var/lib/xmpp-test-client/received"
          ];
        };
      };
    };

  testScript = ''
    import re

    machine.wait_for_unit("prosody.service")
    machine.wait_for_open_port(5222)
    machine.wait_for_open_port(5347)
    machine.wait_for_unit("mock-voipms.service")
    machine.wait_for_open_port(8090)
    # Type=notify: active once the spool is open and the webhook port bound.
    machine.wait_for_unit("voipms-xmpp.service")
    machine.wait_for_open_port(8080)
    machine.wait_until_succeeds(
        "journalctl -u prosody.service | grep -q 'External component successfully authenticated'"
    )

    with subtest("the configuration holds credential names, not secrets"):
        exec_start = machine.succeed("systemctl show -P ExecStart voipms-xmpp.service")
        found = re.search(r"--config (\S+)", exec_start)
        assert found is not None, exec_start
        config = found.group(1)
        machine.succeed(
            f"jq -e '.xmpp.secret_file == \"xmpp-secret\""
            f" and .voipms.api_password_file == \"voipms-api-password\""
            f" and .webhook.key_file == \"webhook-key\"' {config}"
        )
        machine.fail(f"grep -F -e ${componentSecret} -e ${webhookKey} {config}")

    with subtest("the unit's exposure is at most 2.0"):
        print(machine.succeed("systemd-analyze security --threshold=20 voipms-xmpp.service"))

    machine.succeed("prosodyctl register alice example.com alice-password")
    machine.succeed("systemctl start xmpp-test-client.service")

    with subtest("a message from XMPP leaves as an SMS"):
        machine.wait_until_succeeds(
            "curl -sf 'http://127.0.0.1:8090/_mock/calls?method=sendSMS'"
            " | jq -e 'any(.[]; .status == \"success\""
            " and .params.did == \"${did}\" and .params.dst == \"${friend}\""
            " and .params.message == \"hello from xmpp\")'"
        )

    with subtest("an SMS arrives as an XMPP message"):
        machine.succeed(
            "curl -sf -X POST http://127.0.0.1:8090/_mock/inbound"
            " -d '{\"did\": \"${did}\", \"from\": \"${friend}\", \"text\": \"hello from sms\"}'"
            " | jq -e '.deliveries | length > 0 and all(.acked)'"
        )
        machine.wait_until_succeeds(
            "grep -qxF 'chat ${friendJid} hello from sms' /var/lib/xmpp-test-client/received"
        )
        machine.wait_until_fails("systemctl is-active --quiet xmpp-test-client.service")
        machine.succeed("test \"$(systemctl show -P Result xmpp-test-client.service)\" = success")
  '';
}
