#include "common/naming.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

using ::testing::HasSubstr;

TEST(NamingTest, AcceptsDnsLabels) {
  const std::string names[] = {"a",        "0",  "ollama-api",        "grafana-web",
                               "a1-b2-c3", "x0", std::string(63, 'z')};
  for (const std::string& name : names) {
    EXPECT_TRUE(ValidateName(NameKind::kService, name).ok()) << name;
    EXPECT_TRUE(IsValidName(name)) << name;
  }
}

struct BadName {
  std::string name;
  std::string reason;
};

class NamingRefusalTest : public ::testing::TestWithParam<BadName> {};

TEST_P(NamingRefusalTest, RefusesWithReason) {
  const absl::Status status = ValidateName(NameKind::kService, GetParam().name);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().reason));
  EXPECT_FALSE(IsValidName(GetParam().name));
}

INSTANTIATE_TEST_SUITE_P(
    Table, NamingRefusalTest,
    ::testing::Values(BadName{"", "is empty"}, BadName{std::string(64, 'a'), "64 characters"},
                      BadName{"Ollama", "upper-case letter 'O' at position 1"},
                      BadName{"ollama_api", "'_' at position 7"},
                      BadName{"ollama.api", "'.' at position 7"},
                      BadName{"a b", "byte 0x20 at position 2"},
                      BadName{"-api", "starts or ends with '-'"},
                      BadName{"api-", "starts or ends with '-'"},
                      BadName{std::string("a\0b", 3), "byte 0x0 at position 2"},
                      BadName{"caf\xc3\xa9", "byte 0xc3 at position 4"}));

TEST(NamingTest, MessageNamesTheKind) {
  EXPECT_THAT(std::string(ValidateName(NameKind::kTenant, "Acme").message()),
              HasSubstr("tenant name \"Acme\""));
  EXPECT_THAT(std::string(ValidateName(NameKind::kComponent, "").message()),
              HasSubstr("component name is empty"));
}

}  // namespace
}  // namespace ferry
