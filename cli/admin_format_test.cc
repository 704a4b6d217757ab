#include "cli/admin_format.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "ferry/v1/admin.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

template <typename T>
T Parse(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

// 2024-05-01T13:00:00Z
const absl::Time kNow = absl::FromUnixSeconds(1714568400);

TEST(ShortDurationTest, TwoLargestUnits) {
  struct Case {
    absl::Duration in;
    std::string want;
  };
  const std::vector<Case> cases = {
      {absl::ZeroDuration(), "0s"},
      {absl::Milliseconds(999), "0s"},
      {-absl::Seconds(5), "0s"},
      {absl::Seconds(42), "42s"},
      {absl::Seconds(303), "5m3s"},
      {absl::Hours(2), "2h"},
      {absl::Hours(2) + absl::Minutes(7) + absl::Seconds(9), "2h7m"},
      {absl::Hours(76), "3d4h"},
      {absl::Hours(24) + absl::Seconds(5), "1d"},
  };
  for (const Case& c : cases) EXPECT_EQ(ShortDuration(c.in), c.want) << c.in;
}

TEST(EnumNamesTest, ShortLowerCaseWords) {
  EXPECT_EQ(ProtocolName(v1::PROTOCOL_TCP), "tcp");
  EXPECT_EQ(ProtocolName(v1::PROTOCOL_UDP), "udp");
  EXPECT_EQ(ProtocolName(v1::PROTOCOL_ICMP), "icmp");
  EXPECT_EQ(ProtocolName(v1::PROTOCOL_UNSPECIFIED), "-");
  EXPECT_EQ(HealthName(v1::HEALTH_STATE_HEALTHY), "healthy");
  EXPECT_EQ(HealthName(v1::HEALTH_STATE_UNHEALTHY), "unhealthy");
  EXPECT_EQ(HealthName(v1::HEALTH_STATE_UNKNOWN), "unknown");
  EXPECT_EQ(SessionPathName(v1::SESSION_PATH_RELAY), "relay");
  EXPECT_EQ(SessionPathName(v1::SESSION_PATH_DIRECT), "direct");
}

TEST(BackendsCellTest, ObservedStateSourceAndSpecFallback) {
  struct Case {
    std::string service;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"", "-"},
      {R"(spec { backends { address: "127.0.0.1:80" } })", "127.0.0.1:80 (unknown)"},
      {R"(backends { address: "127.0.0.1:80" health: HEALTH_STATE_HEALTHY source: "127.0.0.1:80" })",
       "127.0.0.1:80 (healthy)"},
      {R"(backends { address: "10.0.0.5:80" health: HEALTH_STATE_UNHEALTHY
                     source: "dns://web.internal:80" }
          backends { address: "10.0.0.6:80" health: HEALTH_STATE_HEALTHY })",
       "10.0.0.5:80 (unhealthy, from dns://web.internal:80), 10.0.0.6:80 (healthy)"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(BackendsCell(Parse<v1::Service>(c.service)), c.want) << c.service;
  }
}

TEST(ServicesTableTest, OneAlignedRowPerService) {
  auto services = Parse<v1::ListServicesResponse>(R"(
    services {
      spec { name: "ollama-api" tenant: "acme" protocol: PROTOCOL_TCP port: 11434 }
      id: 1 vip: "10.100.0.17" health: HEALTH_STATE_HEALTHY connector: "edge-1" origin: "api"
      backends { address: "127.0.0.1:11434" health: HEALTH_STATE_HEALTHY }
    }
    services {
      spec { name: "dns" tenant: "acme" protocol: PROTOCOL_UDP }
      id: 22 vip: "10.100.0.3" health: HEALTH_STATE_UNHEALTHY origin: "config"
    })");
  EXPECT_EQ(ServicesTable(services),
            "TENANT  NAME        ID  PROTO  PORT   VIP          HEALTH     CONNECTOR  ORIGIN  "
            "BACKENDS\n"
            "acme    ollama-api  1   tcp    11434  10.100.0.17  healthy    edge-1     api     "
            "127.0.0.1:11434 (healthy)\n"
            "acme    dns         22  udp    -      10.100.0.3   unhealthy  -          config  -\n");
}

TEST(LeasesTableTest, PinnedReadsYesOrNo) {
  auto leases = Parse<v1::ListLeasesResponse>(R"(
    leases { tenant: "acme" service: "web" vip: "10.100.0.5" pool: "10.100.0.0/24" pinned: true }
    leases { tenant: "acme" service: "db" vip: "10.100.0.77" pool: "10.100.0.0/24" })");
  EXPECT_EQ(LeasesTable(leases),
            "TENANT  SERVICE  VIP          POOL           PINNED\n"
            "acme    web      10.100.0.5   10.100.0.0/24  yes\n"
            "acme    db       10.100.0.77  10.100.0.0/24  no\n");
}

TEST(SessionsTableTest, ExpiryIsRelativeToNow) {
  auto sessions = Parse<v1::ListSessionsResponse>(R"(
    sessions { session_id: "9f3c01d2a4b5e677" tenant: "acme" service: "ollama-api"
               agent: "laptop" connector: "edge-1" relay: "relay-1" path: SESSION_PATH_RELAY
               expires_at { seconds: 1714568705 } })");
  EXPECT_EQ(SessionsTable(sessions, kNow),
            "SESSION           TENANT  SERVICE     AGENT   CONNECTOR  RELAY    PATH   EXPIRES IN\n"
            "9f3c01d2a4b5e677  acme    ollama-api  laptop  edge-1     relay-1  relay  5m5s\n");
}

const char kStatus[] = R"(
  version: "0.1.0" uptime { seconds: 74 } route_version: 2 trust_domain: "ferry.local"
  services_healthy: 1 services_unhealthy: 1
  connectors {
    identity { tenant: "acme" role: ROLE_CONNECTOR name: "edge-1" }
    address: "ipv4:127.0.0.1:51234" version: "0.1.0" acked_route_version: 2
    connected_at { seconds: 1714568280 }
    config_error: "services[0].port: 70000 is not a port"
    config_error_at { seconds: 1714568390 }
  }
  connectors {
    identity { tenant: "acme" role: ROLE_CONNECTOR name: "edge-2" }
    address: "ipv4:127.0.0.1:51240" acked_route_version: 1
  }
  relays {
    identity { tenant: "ops" role: ROLE_RELAY name: "relay-1" }
    address: "ipv4:127.0.0.1:40000" acked_route_version: 2
    connected_at { seconds: 1714564800 }
  })";

TEST(StatusTextTest, ConfigErrorIsShownAtTheTopAndUnderItsConnector) {
  std::string text = StatusText(Parse<v1::GetStatusResponse>(kStatus), v1::ListServicesResponse(),
                                v1::ListSessionsResponse(), kNow);
  EXPECT_TRUE(absl::StartsWith(text, "!! 1 connector(s) with a CONFIG ERROR")) << text;
  EXPECT_TRUE(absl::StrContains(
      text,
      "CONFIG ERROR  connector acme/edge-1 since 2024-05-01T12:59:50Z: services[0].port: 70000 "
      "is not a port\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(
      text, "Intermediate  version 0.1.0, up 1m14s, route version 2, trust domain ferry.local\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "Services      1 healthy, 1 unhealthy, 0 unknown\n"));
  EXPECT_TRUE(
      absl::StrContains(text,
                        "CONNECTORS (2)\n"
                        "TENANT  NAME    ADDRESS               VERSION  "
                        "CONNECTED FOR  ACKED ROUTES\n"
                        "acme    edge-1  ipv4:127.0.0.1:51234  0.1.0    2m             2\n"
                        "acme    edge-2  ipv4:127.0.0.1:51240  -        -              1\n"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "RELAYS (1)\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "ops     relay-1  ipv4:127.0.0.1:40000  -        1h"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "SERVICES (0)\n")) << text;
  EXPECT_TRUE(absl::StrContains(text, "SESSIONS (0)\n")) << text;
}

TEST(StatusTextTest, NoConfigErrorNoBanner) {
  v1::GetStatusResponse status = Parse<v1::GetStatusResponse>(kStatus);
  status.mutable_connectors(0)->clear_config_error();
  std::string text =
      StatusText(status, v1::ListServicesResponse(), v1::ListSessionsResponse(), kNow);
  EXPECT_FALSE(absl::StrContains(text, "CONFIG ERROR")) << text;
  EXPECT_TRUE(absl::StartsWith(text, "Intermediate  ")) << text;
}

TEST(StatusJsonTest, OneObjectWithStatusServicesAndSessions) {
  auto services = Parse<v1::ListServicesResponse>(R"(
    services { spec { name: "web" tenant: "acme" } id: 3 vip: "10.100.0.9" })");
  std::string json =
      StatusJson(Parse<v1::GetStatusResponse>(kStatus), services, v1::ListSessionsResponse());
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  const auto& fields = parsed.fields();
  ASSERT_EQ(fields.size(), 3u) << json;
  const auto& status = fields.at("status").struct_value().fields();
  EXPECT_EQ(status.at("version").string_value(), "0.1.0");
  EXPECT_EQ(status.at("connectors")
                .list_value()
                .values(0)
                .struct_value()
                .fields()
                .at("configError")
                .string_value(),
            "services[0].port: 70000 is not a port");
  ASSERT_EQ(fields.at("services").list_value().values_size(), 1);
  EXPECT_EQ(
      fields.at("services").list_value().values(0).struct_value().fields().at("vip").string_value(),
      "10.100.0.9");
  EXPECT_EQ(fields.at("sessions").list_value().values_size(), 0);
}

TEST(MessageToJsonTest, DefaultsArePrintedSoScriptsFindEveryKey) {
  std::string json = MessageToJson(v1::ListSessionsResponse());
  EXPECT_TRUE(absl::StrContains(json, "\"sessions\": []")) << json;
  EXPECT_TRUE(absl::EndsWith(json, "\n"));
}

}  // namespace
}  // namespace ferry::cli
