#include "bench/loadgen_report.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/admin_http_server.h"
#include "gtest/gtest.h"

namespace ferry::bench {
namespace {

LoadgenReport SampleReport() {
  LoadgenReport r;
  r.payload_size = 64;
  r.flows = 256;
  r.sessions = 1;
  r.senders = 1;
  r.seconds = 2;
  r.sent = 1000;
  r.delivered = 900;
  r.payload_bytes = 900 * 64;
  r.sink_drops = {{"bad_tag", 2}};
  return r;
}

TEST(LoadgenReportTest, DerivedRates) {
  struct Case {
    const char* what;
    double seconds;
    uint64_t sent, delivered, payload_bytes;
    double sent_per_s, delivered_per_s, loss_pct, gbit;
  };
  const Case cases[] = {
      {"some loss", 2, 1000, 900, 900 * 64, 500, 450, 10, 900 * 64 * 8 / 2 / 1e9},
      {"no loss", 1, 100, 100, 100 * 1400, 100, 100, 0, 100 * 1400 * 8 / 1e9},
      {"nothing sent", 1, 0, 0, 0, 0, 0, 0, 0},
      {"no time", 0, 10, 10, 640, 0, 0, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    LoadgenReport r;
    r.seconds = c.seconds;
    r.sent = c.sent;
    r.delivered = c.delivered;
    r.payload_bytes = c.payload_bytes;
    EXPECT_DOUBLE_EQ(r.sent_per_second(), c.sent_per_s);
    EXPECT_DOUBLE_EQ(r.delivered_per_second(), c.delivered_per_s);
    EXPECT_DOUBLE_EQ(r.loss_percent(), c.loss_pct);
    EXPECT_DOUBLE_EQ(r.payload_gbit_per_second(), c.gbit);
  }
}

TEST(LoadgenReportTest, JsonLineHoldsEveryFieldAndOnlyPresentOptionalOnes) {
  LoadgenReport r = SampleReport();
  const std::string without = JsonLine(r);
  EXPECT_EQ(without,
            "{\"payload_bytes\":64,\"flows\":256,\"sessions\":1,\"senders\":1,\"rate_limit\":0,"
            "\"seconds\":2.0000,\"sent\":1000,\"send_failed\":0,\"closes\":0,\"reopened\":0,"
            "\"delivered\":900,\"payload_bytes_delivered\":57600,\"sent_per_s\":500.0,"
            "\"delivered_per_s\":450.0,\"loss_pct\":10.000,\"payload_gbit_per_s\":0.0002,"
            "\"sink_drops\":{\"bad_tag\":2}}");
  r.relay_drops = ReasonCounts{{"replayed", 1}, {"unknown_flow", 3}};
  r.udp_rcvbuf_errors = 5;
  r.relay_cpu_seconds = 1.5;
  r.loadgen_cpu_seconds = 0.25;
  EXPECT_EQ(JsonLine(r),
            absl::StrCat(without.substr(0, without.size() - 1),
                         ",\"relay_drops\":{\"replayed\":1,\"unknown_flow\":3},"
                         "\"udp_rcvbuf_errors\":5,\"relay_cpu_s\":1.500,\"loadgen_cpu_s\":0.250}"));
}

TEST(LoadgenReportTest, HumanLineSaysWhatWasMeasured) {
  LoadgenReport r = SampleReport();
  r.relay_drops = ReasonCounts{};
  r.relay_cpu_seconds = 1;
  EXPECT_EQ(HumanLine(r),
            "payload 64 B, 256 flows, 1 session, 1 sender, no rate limit, 2.00 s: sent 1000 "
            "(500/s), delivered 900 (450/s), loss 10.00%, 0.000 Gbit/s of payload; sink drops: "
            "bad_tag=2; relay drops: none; relay CPU 50% of a core");
}

TEST(LoadgenReportTest, CountsDeltaKeepsOnlyWhatGrew) {
  EXPECT_EQ(CountsDelta({{"a", 1}, {"b", 5}}, {{"a", 4}, {"b", 5}, {"c", 2}}),
            (ReasonCounts{{"a", 3}, {"c", 2}}));
  EXPECT_TRUE(CountsDelta({{"a", 1}}, {{"a", 1}}).empty());
}

TEST(LoadgenReportTest, ParsesTheUdpRcvbufErrorsColumn) {
  const std::string snmp =
      "Ip: Forwarding DefaultTTL\nIp: 1 64\n"
      "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
      "Udp: 100 2 7 90 1234 0\n"
      "UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
      "UdpLite: 0 0 0 0 99 0\n";
  absl::StatusOr<uint64_t> errors = ParseUdpRcvbufErrors(snmp);
  ASSERT_TRUE(errors.ok()) << errors.status();
  EXPECT_EQ(*errors, 1234u);
  EXPECT_EQ(ParseUdpRcvbufErrors("Ip: Forwarding\nIp: 1\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  // This host's own file parses.
  EXPECT_TRUE(ReadUdpRcvbufErrors().ok());
}

TEST(LoadgenReportTest, ParsesProcessCpuTime) {
  // comm may hold spaces and parentheses; utime 250 and stime 50 ticks.
  const std::string stat =
      "1234 (ferry relay (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 12345";
  absl::StatusOr<double> cpu = ParseProcessCpuSeconds(stat, 100);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_DOUBLE_EQ(*cpu, 3.0);
  EXPECT_FALSE(ParseProcessCpuSeconds("no parenthesis", 100).ok());
  EXPECT_FALSE(ParseProcessCpuSeconds("1 (x) S 1 2", 100).ok());
  EXPECT_TRUE(ReadProcessCpuSeconds(getpid()).ok());
}

TEST(LoadgenReportTest, ParsesCountsByReason) {
  const std::string text =
      "# HELP ferry_relay_drops_total Frames dropped.\n"
      "# TYPE ferry_relay_drops_total counter\n"
      "ferry_relay_drops_total{reason=\"bad_tag\"} 0\n"
      "ferry_relay_drops_total{reason=\"unknown_flow\"} 12\n"
      "ferry_relay_drops_total{reason=\"replayed\",worker=\"1\"} 4\n"
      "ferry_relay_frames_total{reason=\"x\"} 9\n"
      "ferry_relay_drops_total{reason=\"queue_full\"} 3e+00\n";
  EXPECT_EQ(ParseCountsByReason(text, "ferry_relay_drops_total"),
            (ReasonCounts{{"queue_full", 3}, {"unknown_flow", 12}}));
}

TEST(LoadgenReportTest, HttpGetBodyReadsAnAdminServer) {
  AdminHttpServer server;
  server.Handle("/metrics", [](const HttpRequest&) {
    HttpResponse response;
    response.body = "ferry_relay_drops_total{reason=\"bad_tag\"} 2\n";
    return response;
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  const std::string base = absl::StrCat("http://127.0.0.1:", server.port());
  absl::StatusOr<std::string> body = HttpGetBody(base + "/metrics", absl::Seconds(5));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "ferry_relay_drops_total{reason=\"bad_tag\"} 2\n");
  EXPECT_EQ(HttpGetBody(base + "/nothing", absl::Seconds(5)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(HttpGetBody("ftp://127.0.0.1:1/x", absl::Seconds(5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  server.Stop();
  EXPECT_EQ(HttpGetBody(base + "/metrics", absl::Seconds(5)).status().code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::bench
