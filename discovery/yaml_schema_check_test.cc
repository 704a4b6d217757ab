// The schema walk on its own: where it records fields, and the proto shapes Ferry's configs do
// not use yet (maps, 64-bit and signed integers, doubles, other well-known types), checked
// against a small schema built at run time. config_loader_test covers the config messages.
#include "discovery/yaml_schema_check.h"

#include <memory>
#include <string>

#include "discovery/yaml_to_json.h"
#include "ferry/v1/config.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FileDescriptorProto;

constexpr char kProbeProto[] = R"pb(
  name: "probe.proto"
  package: "t"
  syntax: "proto3"
  dependency: "google/protobuf/timestamp.proto"
  message_type {
    name: "Probe"
    field { name: "small" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
    field { name: "big" number: 2 type: TYPE_INT64 label: LABEL_OPTIONAL }
    field { name: "huge" number: 3 type: TYPE_UINT64 label: LABEL_OPTIONAL }
    field { name: "ratio" number: 4 type: TYPE_DOUBLE label: LABEL_OPTIONAL }
    field { name: "blob" number: 5 type: TYPE_BYTES label: LABEL_OPTIONAL }
    field {
      name: "when"
      number: 6
      type: TYPE_MESSAGE
      label: LABEL_OPTIONAL
      type_name: ".google.protobuf.Timestamp"
    }
    field {
      name: "labels"
      number: 7
      type: TYPE_MESSAGE
      label: LABEL_REPEATED
      type_name: ".t.Probe.LabelsEntry"
    }
    field {
      name: "child_probes"
      number: 8
      type: TYPE_MESSAGE
      label: LABEL_REPEATED
      type_name: ".t.Probe"
    }
    nested_type {
      name: "LabelsEntry"
      field { name: "key" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
      field { name: "value" number: 2 type: TYPE_UINT32 label: LABEL_OPTIONAL }
      options { map_entry: true }
    }
  }
)pb";

class ProbeSchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FileDescriptorProto timestamp;
    google::protobuf::Timestamp::descriptor()->file()->CopyTo(&timestamp);
    ASSERT_NE(pool_.BuildFile(timestamp), nullptr);
    FileDescriptorProto probe;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(kProbeProto, &probe));
    ASSERT_NE(pool_.BuildFile(probe), nullptr);
    probe_ = pool_.FindMessageTypeByName("t.Probe");
    ASSERT_NE(probe_, nullptr);
  }

  // "" when `yaml` fits Probe, else the error message.
  std::string Check(const std::string& yaml) {
    absl::StatusOr<YAML::Node> root = ParseYamlDocument(yaml, "p.yaml");
    if (!root.ok()) return std::string(root.status().message());
    const absl::Status status = CheckYamlAgainstSchema(*root, *probe_, "p.yaml", nullptr);
    if (!status.ok()) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    }
    return std::string(status.message());
  }

  DescriptorPool pool_;
  const Descriptor* probe_ = nullptr;
};

TEST_F(ProbeSchemaTest, AcceptsEveryScalarTypeInItsYamlForm) {
  EXPECT_EQ(Check("small: -2147483648\nbig: -9223372036854775808\nhuge: 18446744073709551615\n"
                  "ratio: 1\nblob: aGVsbG8=\nlabels: {a: 1, b: 4294967295}\n"
                  "childProbes: [{ratio: .inf}, {small: 2147483647, child_probes: []}]\n"),
            "");
}

TEST_F(ProbeSchemaTest, LeavesOtherWellKnownTypesToTheJsonParser) {
  EXPECT_EQ(Check("when: 2024-01-01T00:00:00Z\n"), "");
  EXPECT_EQ(Check("when: [anything]\n"), "");
}

TEST_F(ProbeSchemaTest, RefusesWrongValuesWithTheirPath) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"small: 2147483648\n",
       "p.yaml:1:8: small: expected an integer from -2147483648 to 2147483647, got 2147483648"},
      {"small: -2147483649\n",
       "p.yaml:1:8: small: expected an integer from -2147483648 to 2147483647, got -2147483649"},
      {"huge: -1\n",
       "p.yaml:1:7: huge: expected an integer from 0 to 18446744073709551615, got -1"},
      {"big: \"12\"\n",
       "p.yaml:1:6: big: expected an integer from -9223372036854775808 to 9223372036854775807, "
       "got the string \"12\"; drop the quotes"},
      {"ratio: fast\n", "p.yaml:1:8: ratio: expected a number, got the string \"fast\""},
      {"blob: 12\n", "p.yaml:1:7: blob: expected a string, got the number 12; quote it: \"12\""},
      {"labels: [a, b]\n", "p.yaml:1:9: labels: expected a mapping, got a list"},
      {"labels: {a: 1, b: x}\n",
       "p.yaml:1:19: labels[\"b\"]: expected an integer from 0 to 4294967295, got the string "
       "\"x\""},
      {"labels: {[k]: 1}\n", "p.yaml:1:10: labels: a map key must be a scalar"},
      {"child_probes:\n  - small: 1\n  - {child_probes: [{ratio: 1}, {smal: 2}]}\n",
       "p.yaml:3:34: child_probes[1].child_probes[1]: unknown field \"smal\" (did you mean "
       "\"small\"?); Probe fields are small, big, huge, ratio, blob, when, labels, child_probes"},
      {"childProbes: [{}]\nchild_probes: []\n",
       "p.yaml:2:1: child_probes: is given twice (first at line 1 as \"childProbes\"); keep one"},
  };
  for (const Case& c : cases) EXPECT_EQ(Check(c.yaml), c.error) << c.yaml;
}

TEST_F(ProbeSchemaTest, DisabledValuesAreNotChecked) {
  EXPECT_EQ(Check("small: !disabled not-a-number\nchild_probes:\n  - !disabled {bogus: 1}\n"), "");
}

TEST(ConfigSchemaTest, RecordsWhereEachFieldAndItemIsWritten) {
  constexpr char kYaml[] = R"(intermediates:
  - a:1
services:
  - name: web
    backends:
      - address: h:1
      -
        !disabled
        address: h:2
      - {address: h:3}
    healthCheck:
      http: {path: /}
)";
  absl::StatusOr<YAML::Node> root = ParseYamlDocument(kYaml, "c.yaml");
  ASSERT_TRUE(root.ok());
  ConfigLocations locations;
  ASSERT_TRUE(
      CheckYamlAgainstSchema(*root, *v1::ConnectorConfig::descriptor(), "c.yaml", &locations).ok());
  struct Expected {
    const char* path;
    int line;
    int column;
  } expected[] = {
      {"intermediates", 1, 1},
      {"intermediates[0]", 2, 5},
      {"services[0]", 4, 5},
      {"services[0].name", 4, 5},
      {"services[0].backends[0].address", 6, 9},
      {"services[0].backends[1]", 10, 9},  // The disabled item takes no index.
      {"services[0].backends[1].address", 10, 10},
      {"services[0].health_check", 11, 5},  // Recorded under the proto name.
      {"services[0].health_check.http.path", 12, 14},
  };
  for (const Expected& e : expected) {
    EXPECT_EQ(locations.Find(e.path).line, e.line) << e.path;
    EXPECT_EQ(locations.Find(e.path).column, e.column) << e.path;
  }
}

TEST(ConfigSchemaTest, NullOneofMembersAndDisabledOnesDoNotCount) {
  absl::StatusOr<YAML::Node> root = ParseYamlDocument(
      "services:\n  - health_check: {tcp: null, http: !disabled {}, udp: {}}\n", "c.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(
      CheckYamlAgainstSchema(*root, *v1::ConnectorConfig::descriptor(), "c.yaml", nullptr).ok());
}

}  // namespace
}  // namespace ferry::discovery
