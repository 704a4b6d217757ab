#include "discovery/config_loader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "discovery/yaml_to_json.h"
#include "ferry/v1/config.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

template <typename T>
T FromText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

template <typename T>
void ExpectLoadsAs(const std::string& yaml, const std::string& expected_text) {
  absl::StatusOr<T> loaded = LoadConfigText<T>(yaml, "test.yaml");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const T expected = FromText<T>(expected_text);
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(expected, *loaded)) << diff;
}

// ---- Valid configs, one full example per type ------------------------------------------------

TEST(ConfigLoaderTest, LoadsFullIntermediateConfig) {
  ExpectLoadsAs<v1::IntermediateConfig>(
      R"(# The control plane.
listen: 0.0.0.0:7443
admin_listen: "127.0.0.1:7444"
tls:
  ca_cert: /etc/ferry/ca.pem
  cert: /etc/ferry/intermediate.pem
  key: /etc/ferry/intermediate.key
trust_domain: ferry.local
state_dir: /var/lib/ferry
vip_pools:
  - cidr: 10.100.0.0/24
  - cidr: 10.101.0.0/16
    tenants: [acme, globex]
dns_listen: 127.0.0.1:0
dns_zone: ferry.internal
dns_ttl: 30s
connector_grace: 10.5s
keepalive_interval: 0.25s
operator_tenant: ops
)",
      R"pb(
        listen: "0.0.0.0:7443"
        admin_listen: "127.0.0.1:7444"
        tls {
          ca_cert: "/etc/ferry/ca.pem"
          cert: "/etc/ferry/intermediate.pem"
          key: "/etc/ferry/intermediate.key"
        }
        trust_domain: "ferry.local"
        state_dir: "/var/lib/ferry"
        vip_pools { cidr: "10.100.0.0/24" }
        vip_pools { cidr: "10.101.0.0/16" tenants: "acme" tenants: "globex" }
        dns_listen: "127.0.0.1:0"
        dns_zone: "ferry.internal"
        dns_ttl { seconds: 30 }
        connector_grace { seconds: 10 nanos: 500000000 }
        keepalive_interval { nanos: 250000000 }
        operator_tenant: "ops"
      )pb");
}

TEST(ConfigLoaderTest, LoadsFullRelayConfig) {
  ExpectLoadsAs<v1::RelayConfig>(R"(intermediates:
  - intermediate-a.example.com:7443
  - "10.0.0.2:7443"
tls: {ca_cert: ca.pem, cert: relay.pem, key: relay.key}
listen: "[::]:7480"
workers: 4
admin_listen: 127.0.0.1:7481
flow_idle_timeout: 60s
max_flows_per_session: 4096
)",
                                 R"pb(
                                   intermediates: "intermediate-a.example.com:7443"
                                   intermediates: "10.0.0.2:7443"
                                   tls { ca_cert: "ca.pem" cert: "relay.pem" key: "relay.key" }
                                   listen: "[::]:7480"
                                   workers: 4
                                   admin_listen: "127.0.0.1:7481"
                                   flow_idle_timeout { seconds: 60 }
                                   max_flows_per_session: 4096
                                 )pb");
}

TEST(ConfigLoaderTest, LoadsFullConnectorConfig) {
  ExpectLoadsAs<v1::ConnectorConfig>(
      R"(intermediates: ["127.0.0.1:7443"]
listen: 127.0.0.1:7490
services:
  - name: demo-web
    tenant: acme
    protocol: PROTOCOL_TCP
    port: 8080
    backends:
      - address: 127.0.0.1:8081
        weight: 2
      - {address: "[::1]:8082"}
    health_check:
      interval: 5s
      timeout: 2s
      jitter: 0.5s
      unhealthy_threshold: 3
      healthy_threshold: 2
      http:
        path: /healthz
        expected_status_min: 200
        expected_status_max: 299
        tls: false
  - name: dns-echo
    protocol: PROTOCOL_UDP
    backends: [{address: "dns://echo.internal:7"}]
    health_check: {udp: {send: ping, expect_prefix: ping}}
  - name: ping
    protocol: PROTOCOL_ICMP
    backends: [{address: 10.0.0.9}]
    health_check: {icmp: {}}
dns_min_ttl: 1s
dns_max_ttl: 600s
)",
      R"pb(
        intermediates: "127.0.0.1:7443"
        listen: "127.0.0.1:7490"
        services {
          name: "demo-web"
          tenant: "acme"
          protocol: PROTOCOL_TCP
          port: 8080
          backends { address: "127.0.0.1:8081" weight: 2 }
          backends { address: "[::1]:8082" }
          health_check {
            interval { seconds: 5 }
            timeout { seconds: 2 }
            jitter { nanos: 500000000 }
            unhealthy_threshold: 3
            healthy_threshold: 2
            http { path: "/healthz" expected_status_min: 200 expected_status_max: 299 }
          }
        }
        services {
          name: "dns-echo"
          protocol: PROTOCOL_UDP
          backends { address: "dns://echo.internal:7" }
          health_check { udp { send: "ping" expect_prefix: "ping" } }
        }
        services {
          name: "ping"
          protocol: PROTOCOL_ICMP
          backends { address: "10.0.0.9" }
          health_check { icmp {} }
        }
        dns_min_ttl { seconds: 1 }
        dns_max_ttl { seconds: 600 }
      )pb");
}

TEST(ConfigLoaderTest, LoadsFullAgentConfig) {
  ExpectLoadsAs<v1::AgentConfig>(R"(intermediates: [intermediate.example.com:7443]
tls:
  ca_cert: ca.pem
  cert: agent.pem
  key: agent.key
exposures:
  - service: ollama-api
    listen: 127.0.0.1:11434
  - service: demo-web
  - service: grafana-web
    listen: localhost:0
)",
                                 R"pb(
                                   intermediates: "intermediate.example.com:7443"
                                   tls { ca_cert: "ca.pem" cert: "agent.pem" key: "agent.key" }
                                   exposures { service: "ollama-api" listen: "127.0.0.1:11434" }
                                   exposures { service: "demo-web" }
                                   exposures { service: "grafana-web" listen: "localhost:0" }
                                 )pb");
}

// ---- How YAML types, names and tags map onto the proto ---------------------------------------

TEST(ConfigLoaderTest, EmptyFileIsAllDefaultsWhereThatIsValid) {
  for (const char* text : {"", "# only a comment\n", "---\n", "~\n"}) {
    absl::StatusOr<v1::IntermediateConfig> loaded =
        LoadConfigText<v1::IntermediateConfig>(text, "empty.yaml");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->ByteSizeLong(), 0u) << text;
  }
  EXPECT_EQ(LoadConfigText<v1::RelayConfig>("", "empty.yaml").status().message(),
            "empty.yaml: intermediates: needs at least one Intermediate address, e.g. "
            "[\"intermediate.example.com:7443\"]");
}

TEST(ConfigLoaderTest, AcceptsJsonNamesAndNullAndIntegerForms) {
  // adminListen is the JSON name of admin_listen; null leaves a field unset; 0x1F90 is 8080.
  ExpectLoadsAs<v1::ConnectorConfig>(R"(intermediates: ["127.0.0.1:7443"]
adminListen: 127.0.0.1:7491
tls: null
services:
  - name: web
    protocol: PROTOCOL_TCP
    port: 0x1F90
    backends: [{address: "127.0.0.1:80", weight: 0o10}]
    pinnedVip: ~
    healthCheck: {tcp: {}, unhealthyThreshold: +5}
)",
                                     R"pb(
                                       intermediates: "127.0.0.1:7443"
                                       admin_listen: "127.0.0.1:7491"
                                       services {
                                         name: "web"
                                         protocol: PROTOCOL_TCP
                                         port: 8080
                                         backends { address: "127.0.0.1:80" weight: 8 }
                                         health_check {
                                           tcp {}
                                           unhealthy_threshold: 5
                                         }
                                       }
                                     )pb");
}

TEST(ConfigLoaderTest, NullOneofMemberDoesNotCompeteWithTheSetOne) {
  ExpectLoadsAs<v1::ConnectorConfig>(R"(intermediates: ["127.0.0.1:7443"]
services:
  - name: echo
    protocol: PROTOCOL_UDP
    backends: [{address: "127.0.0.1:7"}]
    health_check: {tcp: null, udp: {send: hi}}
)",
                                     R"pb(
                                       intermediates: "127.0.0.1:7443"
                                       services {
                                         name: "echo"
                                         protocol: PROTOCOL_UDP
                                         backends { address: "127.0.0.1:7" }
                                         health_check { udp { send: "hi" } }
                                       }
                                     )pb");
}

TEST(ConfigLoaderTest, QuotedAndBlockScalarsAreStringsEvenWhenTheyLookLikeOtherTypes) {
  ExpectLoadsAs<v1::ConnectorConfig>(R"(intermediates: ["127.0.0.1:7443"]
services:
  - name: "123"
    protocol: PROTOCOL_UDP
    backends: [{address: "127.0.0.1:9"}]
    health_check:
      udp:
        send: !!str true
        expect_prefix: |-
          null
)",
                                     R"pb(
                                       intermediates: "127.0.0.1:7443"
                                       services {
                                         name: "123"
                                         protocol: PROTOCOL_UDP
                                         backends { address: "127.0.0.1:9" }
                                         health_check { udp { send: "true" expect_prefix: "null" } }
                                       }
                                     )pb");
}

TEST(ConfigLoaderTest, DisabledItemsAndValuesAreLeftOut) {
  // The second service is disabled by the one line holding the tag; the health check by a tag
  // on its value. Indices in errors count only what is loaded.
  const std::string yaml = R"(intermediates: ["127.0.0.1:7443"]
services:
  - name: web
    protocol: PROTOCOL_TCP
    backends: [{address: "127.0.0.1:80"}]
    health_check: !disabled
      http: {path: /}
  -
    !disabled
    name: ollama-api
    protocol: PROTOCOL_TCP
    backends: [{address: "127.0.0.1:11434"}]
  - name: echo
    protocol: PROTOCOL_UDP
    backends: [{address: "x"}]
)";
  EXPECT_EQ(std::string(LoadConfigText<v1::ConnectorConfig>(yaml, "c.yaml").status().message()),
            "c.yaml:15:17: services[1].backends[0].address: \"x\" is not host:port with a port "
            "from 1 to 65535 (or dns://name:port, srv://_service._proto.name)");

  const std::string fixed =
      absl::StrReplaceAll(yaml, {{"{address: \"x\"}", "{address: \"127.0.0.1:7\"}"}});
  ExpectLoadsAs<v1::ConnectorConfig>(fixed, R"pb(
    intermediates: "127.0.0.1:7443"
    services {
      name: "web"
      protocol: PROTOCOL_TCP
      backends { address: "127.0.0.1:80" }
    }
    services {
      name: "echo"
      protocol: PROTOCOL_UDP
      backends { address: "127.0.0.1:7" }
    }
  )pb");
}

// ---- Malformed inputs: the exact error, with file, line, column and field path ---------------

struct BadCase {
  const char* name;
  absl::Status (*load)(const std::string& yaml);
  const char* yaml;
  const char* error;
};

template <typename T>
absl::Status LoadStatus(const std::string& yaml) {
  return LoadConfigText<T>(yaml, "c.yaml").status();
}

constexpr auto kIntermediate = &LoadStatus<v1::IntermediateConfig>;
constexpr auto kRelay = &LoadStatus<v1::RelayConfig>;
constexpr auto kConnector = &LoadStatus<v1::ConnectorConfig>;
constexpr auto kAgent = &LoadStatus<v1::AgentConfig>;

const BadCase kBadCases[] = {
    // YAML itself.
    {"SyntaxError", kConnector, "intermediates: [\"a:1\"\nlisten: x\n",
     "c.yaml:2:1: YAML syntax error: end of sequence flow not found"},
    {"BadIndentation", kConnector, "listen: a\n  admin_listen: b\n",
     "c.yaml:2:15: YAML syntax error: illegal map value"},
    {"TwoDocuments", kConnector, "listen: a:1\n---\nlisten: b:2\n",
     "c.yaml:3:1: holds 2 YAML documents (separated by ---); a config file is one"},
    {"TopLevelList", kConnector, "- a\n- b\n",
     "c.yaml:1:1: the top level must be a mapping of ConnectorConfig fields, not a list"},
    {"TopLevelScalar", kConnector, "hello\n",
     "c.yaml:1:1: the top level must be a mapping of ConnectorConfig fields, not a value"},
    {"UnknownTag", kConnector, "listen: !ip 127.0.0.1:1\n",
     "c.yaml:1:9: listen: the tag !ip is not supported; the only tag Ferry knows is !disabled"},
    {"UnsupportedCoreTag", kConnector, "listen: !!binary aGk=\n",
     "c.yaml:1:9: listen: the tag !!binary is not supported; use plain YAML scalars, maps and "
     "lists"},
    {"BadExplicitInt", kConnector, "services: [{port: !!int eighty}]\n",
     "c.yaml:1:19: services[0].port: \"eighty\" is not a valid !!int"},
    {"IntegerBeyond64Bits", kConnector, "services: [{port: 99999999999999999999}]\n",
     "c.yaml:1:19: services[0].port: the number 99999999999999999999 does not fit in 64 bits"},
    {"AliasCycle", kConnector, "services: &a [*a]\n",
     "c.yaml:1:11: services[0]: expected a mapping of ServiceSpec fields, got a list"},
    // Field names.
    {"UnknownTopLevelField", kConnector, "intermediate: [\"i:1\"]\n",
     "c.yaml:1:1: unknown field \"intermediate\" (did you mean \"intermediates\"?); "
     "ConnectorConfig fields are intermediates, tls, listen, admin_listen, services, "
     "dns_min_ttl, dns_max_ttl, dns_servers"},
    {"UnknownNestedField", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n  - name: a\n  - name: b\n    helth_check: {}\n",
     "c.yaml:5:5: services[1]: unknown field \"helth_check\" (did you mean \"health_check\"?); "
     "ServiceSpec fields are name, tenant, protocol, port, backends, health_check, pinned_vip, "
     "connector"},
    {"UnknownFieldNoSuggestion", kRelay, "tls: {password: x}\n",
     "c.yaml:1:7: tls: unknown field \"password\"; TlsConfig fields are ca_cert, cert, key"},
    {"DashedFieldNameSuggestsUnderscore", kRelay, "admin-listen: x\n",
     "c.yaml:1:1: unknown field \"admin-listen\" (did you mean \"admin_listen\"?); RelayConfig "
     "fields are intermediates, tls, listen, workers, admin_listen, flow_idle_timeout, "
     "max_flows_per_session"},
    {"FieldGivenTwice", kConnector, "services:\n  - name: a\n    port: 1\n    name: b\n",
     "c.yaml:4:5: services[0].name: is given twice (first at line 2 as \"name\"); keep one"},
    {"FieldGivenTwiceInBothForms", kConnector,
     "admin_listen: 127.0.0.1:1\nadminListen: 127.0.0.1:2\n",
     "c.yaml:2:1: admin_listen: is given twice (first at line 1 as \"admin_listen\"); keep one"},
    {"TwoMembersOfAOneof", kConnector,
     "services:\n  - health_check:\n      tcp: {}\n      http: {path: /}\n",
     "c.yaml:4:7: services[0].health_check.http: only one of tcp, http, udp, icmp, grpc may be "
     "set, and tcp already is; keep one"},
    {"NonScalarKey", kConnector, "? [a, b]\n: c\n",
     "c.yaml:1:3: a field name must be a plain word, not a list or mapping"},
    // Types.
    {"NumberForString", kConnector, "listen: 7490\n",
     "c.yaml:1:9: listen: expected a string, got the number 7490; quote it: \"7490\""},
    {"BooleanForString", kConnector, "services: [{name: true}]\n",
     "c.yaml:1:19: services[0].name: expected a string, got the boolean true; quote it: "
     "\"true\""},
    {"ListForString", kConnector, "listen: [a]\n",
     "c.yaml:1:9: listen: expected a string, got a list"},
    {"QuotedNumberForInteger", kConnector, "services: [{port: \"8080\"}]\n",
     "c.yaml:1:19: services[0].port: expected an integer from 0 to 4294967295, got the string "
     "\"8080\"; drop the quotes"},
    {"NegativeUnsigned", kConnector, "services: [{port: -1}]\n",
     "c.yaml:1:19: services[0].port: expected an integer from 0 to 4294967295, got -1"},
    {"Uint32Overflow", kRelay, "workers: 4294967296\n",
     "c.yaml:1:10: workers: expected an integer from 0 to 4294967295, got 4294967296"},
    {"FloatForInteger", kRelay, "workers: 1.5\n",
     "c.yaml:1:10: workers: expected an integer from 0 to 4294967295, got the number 1.5"},
    {"Yaml11YesIsNotABoolean", kConnector, "services: [{health_check: {http: {tls: yes}}}]\n",
     "c.yaml:1:40: services[0].health_check.http.tls: expected true or false, got the string "
     "\"yes\""},
    {"EnumShortName", kConnector, "services: [{protocol: TCP}]\n",
     "c.yaml:1:23: services[0].protocol: \"TCP\" is not a Protocol; use one of PROTOCOL_UDP, "
     "PROTOCOL_TCP, PROTOCOL_ICMP (did you mean PROTOCOL_TCP?)"},
    {"EnumTypo", kConnector, "services: [{protocol: PROTOCOL_UPD}]\n",
     "c.yaml:1:23: services[0].protocol: \"PROTOCOL_UPD\" is not a Protocol; use one of "
     "PROTOCOL_UDP, PROTOCOL_TCP, PROTOCOL_ICMP (did you mean PROTOCOL_UDP?)"},
    {"EnumNumber", kConnector, "services: [{protocol: 2}]\n",
     "c.yaml:1:23: services[0].protocol: expected a Protocol name (one of PROTOCOL_UDP, "
     "PROTOCOL_TCP, PROTOCOL_ICMP), got the number 2"},
    {"DurationWithoutUnit", kConnector, "dns_min_ttl: 5\n",
     "c.yaml:1:14: dns_min_ttl: expected a duration such as \"5s\", \"0.25s\" or \"300s\", got "
     "the number 5; add the unit: \"5s\""},
    {"DurationInMinutes", kConnector, "services: [{health_check: {interval: 5m}}]\n",
     "c.yaml:1:38: services[0].health_check.interval: \"5m\" is not a duration; write seconds "
     "with an \"s\" suffix, e.g. \"5s\", \"0.25s\", \"300s\" (at most 9 decimals)"},
    {"DurationAsMapping", kConnector, "dns_max_ttl: {seconds: 5}\n",
     "c.yaml:1:14: dns_max_ttl: expected a duration such as \"5s\", \"0.25s\" or \"300s\", got a "
     "mapping"},
    {"ScalarForList", kConnector, "intermediates: i.example:7443\n",
     "c.yaml:1:16: intermediates: expected a list, got the string \"i.example:7443\"; write one "
     "\"- item\" line per entry, or [a, b]"},
    {"ScalarForMessage", kRelay, "tls: /etc/ferry/ca.pem\n",
     "c.yaml:1:6: tls: expected a mapping of TlsConfig fields, got the string "
     "\"/etc/ferry/ca.pem\""},
    {"EmptyListItem", kConnector, "services:\n  -\n  - name: a\n",
     "c.yaml:3:3: services[0]: is an empty list item; fill it in or remove its \"-\""},
    {"DisabledTopLevel", kConnector, "!disabled\nlisten: a\n",
     "c.yaml:1:1: !disabled only marks a list item or the value of a field"},
    // Validation, placed at the field's line.
    {"MissingIntermediates", kConnector, "listen: 127.0.0.1:7490\n",
     "c.yaml: intermediates: needs at least one Intermediate address, e.g. "
     "[\"intermediate.example.com:7443\"]"},
    {"IntermediateWithoutPort", kAgent, "intermediates:\n  - a:7443\n  - b.example\n",
     "c.yaml:3:5: intermediates[1]: \"b.example\" is not host:port with a port from 1 to 65535 "
     "(e.g. intermediate.example.com:7443, 10.0.0.5:7443)"},
    {"IntermediatePortZero", kRelay, "intermediates: [\"a:0\"]\n",
     "c.yaml:1:17: intermediates[0]: \"a:0\" is not host:port with a port from 1 to 65535 (e.g. "
     "intermediate.example.com:7443, 10.0.0.5:7443)"},
    {"BadBackendAddress", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n"
     "  - {name: a, protocol: PROTOCOL_TCP, backends: [{address: \"127.0.0.1:1\"}]}\n"
     "  - {name: b, protocol: PROTOCOL_TCP, backends: [{address: \"127.0.0.1:2\"}]}\n"
     "  - name: c\n    protocol: PROTOCOL_TCP\n    backends:\n      - address: x\n",
     "c.yaml:8:9: services[2].backends[0].address: \"x\" is not host:port with a port from 1 to "
     "65535 (or dns://name:port, srv://_service._proto.name)"},
    {"BadServiceName", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n  - name: Web\n    protocol: PROTOCOL_TCP\n",
     "c.yaml:3:5: services[0].name: service name \"Web\" has an upper-case letter 'W' at "
     "position 1; use lower case (names are DNS labels: a-z, 0-9 and '-', 1 to 63 "
     "characters)"},
    {"MissingProtocolPlacedAtTheService", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n  - name: web\n",
     "c.yaml:3:5: services[0].protocol: is not set; use PROTOCOL_UDP, PROTOCOL_TCP or "
     "PROTOCOL_ICMP"},
    {"HealthCheckTooFrequent", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n  - name: web\n    protocol: PROTOCOL_TCP\n"
     "    backends: [{address: \"127.0.0.1:1\"}]\n    health_check: {interval: 0.05s, tcp: {}}\n",
     "c.yaml:6:20: services[0].health_check.interval: must be at least 100ms"},
    {"DuplicateServiceName", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n"
     "  - {name: web, protocol: PROTOCOL_TCP, backends: [{address: \"127.0.0.1:1\"}]}\n"
     "  - {name: web, protocol: PROTOCOL_UDP, backends: [{address: \"127.0.0.1:2\"}]}\n",
     "c.yaml:4:6: services[1].name: \"web\" is already services[0].name; service names are "
     "unique per tenant"},
    {"TenantsDisagree", kConnector,
     "intermediates: [\"i:1\"]\nservices:\n"
     "  - {name: a, tenant: acme, protocol: PROTOCOL_TCP, backends: [{address: \"h:1\"}]}\n"
     "  - {name: b, protocol: PROTOCOL_TCP, backends: [{address: \"h:1\"}]}\n"
     "  - {name: c, tenant: globex, protocol: PROTOCOL_TCP, backends: [{address: \"h:1\"}]}\n",
     "c.yaml:5:15: services[2].tenant: \"globex\" differs from services[0].tenant \"acme\"; a "
     "connector serves its own tenant only (leave tenant out to use it)"},
    {"DnsTtlsInverted", kConnector, "intermediates: [\"i:1\"]\ndns_min_ttl: 10s\ndns_max_ttl: 2s\n",
     "c.yaml:3:1: dns_max_ttl: 2s is less than dns_min_ttl 10s; the minimum must not exceed the "
     "maximum"},
    {"DnsMinTtlAboveDefaultMax", kConnector, "intermediates: [\"i:1\"]\ndns_min_ttl: 301s\n",
     "c.yaml:2:1: dns_min_ttl: 301s is more than dns_max_ttl 300s (the default); the minimum "
     "must not exceed the maximum"},
    {"ListenWithoutPort", kConnector, "intermediates: [\"i:1\"]\nlisten: 127.0.0.1\n",
     "c.yaml:2:1: listen: \"127.0.0.1\" is not host:port with a port from 0 to 65535 (e.g. "
     "127.0.0.1:7443, [::1]:7443, 0.0.0.0:0)"},
    {"ListenBadIpv6", kRelay, "intermediates: [\"i:1\"]\nlisten: \"[::g]:80\"\n",
     "c.yaml:2:1: listen: \"[::g]:80\": \"::g\" in brackets is not an IPv6 address"},
    {"ListenBadIpv4", kRelay, "intermediates: [\"i:1\"]\nadmin_listen: 300.1.1.1:80\n",
     "c.yaml:2:1: admin_listen: \"300.1.1.1:80\": the host \"300.1.1.1\" is neither an IP address "
     "nor a host name (its last label is a number)"},
    {"ListenersCollide", kConnector,
     "intermediates: [\"i:1\"]\nlisten: 127.0.0.1:7490\nadmin_listen: 127.0.0.1:7490\n",
     "c.yaml:3:1: admin_listen: \"127.0.0.1:7490\" is also listen; each listener needs its own "
     "port"},
    {"PartialTls", kAgent, "intermediates: [\"i:1\"]\ntls: {ca_cert: ca.pem, cert: a.pem}\n",
     "c.yaml:2:1: tls.key: is empty, but tls.cert is set; give ca_cert, cert and key together"},
    {"TooManyWorkers", kRelay, "intermediates: [\"i:1\"]\nworkers: 5000\n",
     "c.yaml:2:1: workers: 5000 is more than 1024; 0 (the default) means one per core"},
    {"NegativeDuration", kRelay, "intermediates: [\"i:1\"]\nflow_idle_timeout: -1.5s\n",
     "c.yaml:2:1: flow_idle_timeout: must be positive, got -1.5s; leave it out for the default"},
    {"EmptyIntermediatesList", kRelay, "intermediates: []\n",
     "c.yaml:1:1: intermediates: needs at least one Intermediate address, e.g. "
     "[\"intermediate.example.com:7443\"]"},
    {"ZeroDnsTtl", kIntermediate, "dns_ttl: 0s\n",
     "c.yaml:1:1: dns_ttl: must be positive, got 0s; leave it out for the default"},
    {"PoolNotACidr", kIntermediate, "vip_pools:\n  - cidr: 10.100.0.0\n",
     "c.yaml:2:5: vip_pools[0].cidr: \"10.100.0.0\" has no /prefix; write it as address/prefix, "
     "e.g. \"10.100.0.0/24\""},
    {"PoolPrefixTooLong", kIntermediate, "vip_pools: [{cidr: 10.100.0.0/31}]\n",
     "c.yaml:1:14: vip_pools[0].cidr: \"10.100.0.0/31\": the prefix /31 is outside /8 to /30 (a "
     "pool needs a network, a gateway, hosts and a broadcast address)"},
    {"PoolPrefixTooShort", kIntermediate, "vip_pools: [{cidr: 10.0.0.0/7}]\n",
     "c.yaml:1:14: vip_pools[0].cidr: \"10.0.0.0/7\": the prefix /7 is outside /8 to /30 (a pool "
     "needs a network, a gateway, hosts and a broadcast address)"},
    {"PoolHostBits", kIntermediate, "vip_pools: [{cidr: 10.100.0.5/24}]\n",
     "c.yaml:1:14: vip_pools[0].cidr: \"10.100.0.5/24\" has host bits set; the network is "
     "10.100.0.0/24"},
    {"PoolIpv6", kIntermediate, "vip_pools: [{cidr: \"fd00::/64\"}]\n",
     "c.yaml:1:14: vip_pools[0].cidr: \"fd00::/64\": \"fd00::\" is not an IPv4 address; write it "
     "as address/prefix, e.g. \"10.100.0.0/24\""},
    {"PoolsOverlap", kIntermediate,
     "vip_pools:\n  - cidr: 10.100.0.0/24\n  - cidr: 10.101.0.0/24\n  - cidr: 10.100.0.0/16\n",
     "c.yaml:4:5: vip_pools[2].cidr: 10.100.0.0/16 overlaps vip_pools[0].cidr 10.100.0.0/24; "
     "pools must not share addresses"},
    {"PoolBadTenant", kIntermediate, "vip_pools: [{cidr: 10.1.0.0/16, tenants: [ok, -bad]}]\n",
     "c.yaml:1:47: vip_pools[0].tenants[1]: tenant name \"-bad\" starts or ends with '-'; it "
     "must start and end with a letter or digit (names are DNS labels: a-z, 0-9 and '-', 1 to 63 "
     "characters)"},
    {"DnsZoneUpperCase", kIntermediate, "dns_zone: Ferry.internal\n",
     "c.yaml:1:1: dns_zone: \"Ferry.internal\" has an upper-case letter 'F'; use lower case"},
    {"DnsZoneEmptyLabel", kIntermediate, "dns_zone: ferry..internal\n",
     "c.yaml:1:1: dns_zone: \"ferry..internal\" has an empty label (two dots in a row, or a "
     "leading dot)"},
    {"DnsZoneUnderscore", kIntermediate, "dns_zone: my_zone\n",
     "c.yaml:1:1: dns_zone: \"my_zone\" has the character \"_\"; DNS names hold a-z, 0-9, '-' and "
     "dots"},
    {"TrustDomainUpperCase", kIntermediate, "trust_domain: Ferry.Local\n",
     "c.yaml:1:1: trust_domain: \"Ferry.Local\" may hold only a-z, 0-9, '-', '.' and '_' (a "
     "SPIFFE trust domain, e.g. \"ferry.local\")"},
    {"OperatorTenantInvalid", kIntermediate, "operator_tenant: \"ops team\"\n",
     "c.yaml:1:1: operator_tenant: tenant name \"ops team\" has byte 0x20 at position 4 (names are "
     "DNS "
     "labels: a-z, 0-9 and '-', 1 to 63 characters)"},
    {"IntermediateListenersCollide", kIntermediate,
     "listen: 127.0.0.1:7443\ndns_listen: 127.0.0.1:7443\n",
     "c.yaml:2:1: dns_listen: \"127.0.0.1:7443\" is also listen; each listener needs its own port"},
    {"ExposureBadService", kAgent,
     "intermediates: [\"i:1\"]\nexposures:\n  - service: web\n  - service: Web_UI\n",
     "c.yaml:4:5: exposures[1].service: service name \"Web_UI\" has an upper-case letter 'W' at "
     "position 1; use lower case (names are DNS labels: a-z, 0-9 and '-', 1 to 63 characters)"},
    {"ExposureMissingService", kAgent,
     "intermediates: [\"i:1\"]\nexposures:\n  - listen: 127.0.0.1:8080\n",
     "c.yaml:3:5: exposures[0].service: service name is empty (names are DNS labels: a-z, 0-9 and "
     "'-', 1 to 63 characters)"},
    {"ExposurePortOutOfRange", kAgent,
     "intermediates: [\"i:1\"]\nexposures:\n  - {service: web, listen: \"127.0.0.1:99999\"}\n",
     "c.yaml:3:20: exposures[0].listen: \"127.0.0.1:99999\" is not host:port with a port from 0 "
     "to 65535 (e.g. 127.0.0.1:7443, [::1]:7443, 0.0.0.0:0)"},
    {"ExposuresShareAPort", kAgent,
     "intermediates: [\"i:1\"]\nexposures:\n  - {service: a, listen: \"127.0.0.1:80\"}\n"
     "  - {service: b, listen: \"127.0.0.1:80\"}\n",
     "c.yaml:4:18: exposures[1].listen: \"127.0.0.1:80\" is also exposures[0].listen; each "
     "listener needs its own port"},
    {"RelayListenersCollide", kRelay,
     "intermediates: [\"i:1\"]\nlisten: 0.0.0.0:7480\nadmin_listen: 0.0.0.0:7480\n",
     "c.yaml:3:1: admin_listen: \"0.0.0.0:7480\" is also listen; each listener needs its own "
     "port"},
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, IsRefusedWithThePathAndReason) {
  const BadCase& c = GetParam();
  const absl::Status status = c.load(c.yaml);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(std::string(status.message()), c.error) << "YAML:\n" << c.yaml;
}

INSTANTIATE_TEST_SUITE_P(Cases, BadConfigTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(ConfigLoaderTest, TooLargeTextIsRefused) {
  const std::string yaml(kMaxConfigBytes + 1, '#');
  EXPECT_EQ(LoadConfigText<v1::AgentConfig>(yaml, "big.yaml").status().message(),
            absl::StrCat("big.yaml: is ", kMaxConfigBytes + 1, " bytes; a config is at most ",
                         kMaxConfigBytes, " bytes"));
}

TEST(ConfigLoaderTest, AliasBombIsRefused) {
  // 2000 services that each alias one service of 2000 backends: a 30 KB file that is a tree of
  // four million backends. The walk stops at its node budget instead.
  std::string yaml = "intermediates: [\"i:1\"]\nservices:\n  - &s\n    name: a\n    backends:\n";
  yaml += "      - &b {address: \"h:1\"}\n";
  for (int i = 1; i < 2000; ++i) yaml += "      - *b\n";
  for (int i = 1; i < 2000; ++i) yaml += "  - *s\n";
  const absl::Status status = LoadStatus<v1::ConnectorConfig>(yaml);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(status.message()),
      ::testing::EndsWith(absl::StrCat(": the document expands to more than ", kMaxYamlNodes,
                                       " nodes (aliases repeated too "
                                       "often?)")));
}

// ---- Files -----------------------------------------------------------------------------------

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    ASSERT_NE(tmp, nullptr);
    dir_ = absl::StrCat(tmp, "/config_loader_test_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0);
  }

  std::string Write(const std::string& name, const std::string& contents) {
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << contents;
    return path;
  }

  std::string dir_;
};

TEST_F(ConfigFileTest, LoadsAFileAndNamesItInErrors) {
  const std::string good = Write("agent.yaml", "intermediates: [\"i.example:7443\"]\n");
  absl::StatusOr<v1::AgentConfig> loaded = LoadConfigFile<v1::AgentConfig>(good);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->intermediates(0), "i.example:7443");

  const std::string bad = Write("bad.yaml", "intermediates: [\"i.example:7443\"]\nwat: 1\n");
  const absl::Status status = LoadConfigFile<v1::AgentConfig>(bad).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            absl::StrCat(bad,
                         ":2:1: unknown field \"wat\"; AgentConfig fields are intermediates, "
                         "tls, exposures, intercept, intercept_interface"));
}

TEST_F(ConfigFileTest, MissingFileIsNotFound) {
  const std::string path = absl::StrCat(dir_, "/absent.yaml");
  const absl::Status status = LoadConfigFile<v1::RelayConfig>(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), absl::StrCat(path, ": cannot open: No such file or directory"));
}

TEST_F(ConfigFileTest, DirectoryIsInvalidArgument) {
  const absl::Status status = LoadConfigFile<v1::RelayConfig>(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), absl::StrCat(dir_, ": is a directory, not a config file"));
}

TEST_F(ConfigFileTest, OversizedFileIsInvalidArgument) {
  const std::string path = Write("huge.yaml", std::string(kMaxConfigBytes + 10, '#'));
  const absl::Status status = LoadConfigFile<v1::RelayConfig>(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), absl::StrCat(path, ": is larger than ", kMaxConfigBytes,
                                           " bytes; a config is a few kilobytes"));
}

TEST_F(ConfigFileTest, UnreadableFileIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any file";
  const std::string path = Write("secret.yaml", "intermediates: [\"i:1\"]\n");
  ASSERT_EQ(chmod(path.c_str(), 0), 0);
  const absl::Status status = LoadConfigFile<v1::RelayConfig>(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(status.message(), absl::StrCat(path, ": cannot open: Permission denied"));
}

}  // namespace
}  // namespace ferry::discovery
