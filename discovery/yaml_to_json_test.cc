#include "discovery/yaml_to_json.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ferry::discovery {
namespace {

// The JSON of `yaml`'s single document, or the error message.
std::string Json(const std::string& yaml, bool null_as_empty_object = false) {
  absl::StatusOr<YAML::Node> root = ParseYamlDocument(yaml, "t.yaml");
  if (!root.ok()) return std::string(root.status().message());
  absl::StatusOr<std::string> json = YamlToJson(*root, "t.yaml", null_as_empty_object);
  if (!json.ok()) return std::string(json.status().message());
  return *json;
}

struct ScalarCase {
  const char* yaml;  // The value of key "v".
  const char* json;
};

class ScalarTest : public ::testing::TestWithParam<ScalarCase> {};

TEST_P(ScalarTest, ConvertsToTheRightJsonType) {
  EXPECT_EQ(Json(absl::StrCat("v: ", GetParam().yaml, "\n")),
            absl::StrCat("{\"v\":", GetParam().json, "}"))
      << GetParam().yaml;
}

INSTANTIATE_TEST_SUITE_P(
    CoreSchema, ScalarTest,
    ::testing::Values(
        // Integers: decimal (sign, leading zeros), octal 0o, hex 0x; quoted ones are strings.
        ScalarCase{"8080", "8080"}, ScalarCase{"\"8080\"", "\"8080\""},
        ScalarCase{"'8080'", "\"8080\""}, ScalarCase{"-12", "-12"}, ScalarCase{"+12", "12"},
        ScalarCase{"007", "7"}, ScalarCase{"0x1F", "31"}, ScalarCase{"0o17", "15"},
        ScalarCase{"18446744073709551615", "18446744073709551615"},
        ScalarCase{"-9223372036854775808", "-9223372036854775808"},
        // Floats, including forms JSON lacks; .inf and .nan as proto JSON spells them.
        ScalarCase{"1.5", "1.5"}, ScalarCase{"1e3", "1000"}, ScalarCase{".5", "0.5"},
        ScalarCase{"1.", "1"}, ScalarCase{"-0.1", "-0.1"}, ScalarCase{".inf", "\"Infinity\""},
        ScalarCase{"-.Inf", "\"-Infinity\""}, ScalarCase{".NaN", "\"NaN\""},
        // Booleans are YAML 1.2's only; YAML 1.1's yes/on stay strings.
        ScalarCase{"true", "true"}, ScalarCase{"False", "false"}, ScalarCase{"TRUE", "true"},
        ScalarCase{"yes", "\"yes\""}, ScalarCase{"on", "\"on\""},
        ScalarCase{"\"true\"", "\"true\""},
        // Null in every spelling; quoted it is a string.
        ScalarCase{"null", "null"}, ScalarCase{"~", "null"}, ScalarCase{"", "null"},
        ScalarCase{"NULL", "null"}, ScalarCase{"\"null\"", "\"null\""},
        // Strings that merely look like something else.
        ScalarCase{"5s", "\"5s\""}, ScalarCase{"1_000", "\"1_000\""},
        ScalarCase{"127.0.0.1:80", "\"127.0.0.1:80\""}, ScalarCase{"0x", "\"0x\""},
        ScalarCase{"1e", "\"1e\""}, ScalarCase{"a-", "\"a-\""}, ScalarCase{"+.", "\"+.\""},
        // Explicit core tags.
        ScalarCase{"!!str 8080", "\"8080\""}, ScalarCase{"!!int \"42\"", "42"},
        ScalarCase{"!!float 3", "3"}, ScalarCase{"!!bool \"true\"", "true"},
        ScalarCase{"!!null ''", "null"}, ScalarCase{"!!str", "\"\""}, ScalarCase{"! 12", "\"12\""},
        // JSON escaping of what YAML allows in strings.
        ScalarCase{"\"say \\\"hi\\\"\"", "\"say \\\"hi\\\"\""},
        ScalarCase{"'back\\slash'", "\"back\\\\slash\""},
        ScalarCase{"\"tab\\tnew\\nline\\r\"", "\"tab\\tnew\\nline\\r\""},
        ScalarCase{"\"bell\\a\"", "\"bell\\u0007\""},
        ScalarCase{"\"\\u00e9t\\u00e9\"", "\"\xc3\xa9t\xc3\xa9\""},
        ScalarCase{"|\n  two\n  lines\n", "\"two\\nlines\\n\""},
        ScalarCase{">-\n  folded\n  text\n", "\"folded text\""}));

TEST(YamlToJsonTest, ConvertsMappingsAndSequences) {
  EXPECT_EQ(Json("a: [1, \"2\", {b: null}]\nc:\n  d: x\n  e: []\nf: {}\n"),
            "{\"a\":[1,\"2\",{\"b\":null}],\"c\":{\"d\":\"x\",\"e\":[]},\"f\":{}}");
  EXPECT_EQ(Json("- 1\n- - 2\n  - 3\n"), "[1,[2,3]]");
  EXPECT_EQ(Json("123: x\n\"k y\": z\n"), "{\"123\":\"x\",\"k y\":\"z\"}");
}

TEST(YamlToJsonTest, ExpandsAliases) {
  EXPECT_EQ(Json("a: &x {p: 1}\nb: *x\n"), "{\"a\":{\"p\":1},\"b\":{\"p\":1}}");
}

TEST(YamlToJsonTest, DropsDisabledItemsAndValues) {
  EXPECT_EQ(Json("a: [1, !disabled 2, 3]\nb: !disabled {x: 1}\nc:\n  -\n    !disabled\n    y: 1\n"
                 "  - z: 2\n"),
            "{\"a\":[1,3],\"c\":[{\"z\":2}]}");
}

TEST(YamlToJsonTest, EmptyDocumentIsNullOrEmptyObject) {
  EXPECT_EQ(Json(""), "null");
  EXPECT_EQ(Json("# just a comment\n"), "null");
  EXPECT_EQ(Json("", /*null_as_empty_object=*/true), "{}");
  EXPECT_EQ(Json("~\n", /*null_as_empty_object=*/true), "{}");
}

TEST(YamlToJsonTest, Errors) {
  struct Case {
    const char* yaml;
    const char* error;
  } cases[] = {
      {"a: [1, 2\n", "t.yaml:2:1: YAML syntax error: end of sequence flow not found"},
      {"a: {b: 1\n", "t.yaml:2:1: YAML syntax error: end of map flow not found"},
      {"a: b: c\n", "t.yaml:1:5: YAML syntax error: illegal map value"},
      {"a: 1\n---\nb: 2\n---\nc: 3\n",
       "t.yaml:3:1: holds 3 YAML documents (separated by ---); a config file is one"},
      {"a:\n  ? [x]\n  : 1\n", "t.yaml:2:5: a: a mapping key must be a plain word"},
      {"a: [x, !custom y]\n",
       "t.yaml:1:8: a[1]: the tag !custom is not supported; the only tag Ferry knows is "
       "!disabled"},
      {"a: !!timestamp 2001-12-14\n",
       "t.yaml:1:4: a: the tag !!timestamp is not supported; use plain YAML scalars, maps and "
       "lists"},
      {"a: !!bool yes\n", "t.yaml:1:4: a: \"yes\" is not a valid !!bool"},
      {"a: !!null x\n", "t.yaml:1:4: a: \"x\" is not a valid !!null"},
      {"a: 18446744073709551616\n",
       "t.yaml:1:4: a: the number 18446744073709551616 does not fit in 64 bits"},
      {"a: -9223372036854775809\n",
       "t.yaml:1:4: a: the number -9223372036854775809 does not fit in 64 bits"},
      {"a: 0x10000000000000000\n",
       "t.yaml:1:4: a: the number 0x10000000000000000 does not fit in 64 bits"},
      {"!disabled 5\n", "t.yaml:1:1: !disabled only marks a list item or the value of a field"},
  };
  for (const Case& c : cases) EXPECT_EQ(Json(c.yaml), c.error) << c.yaml;
}

TEST(YamlToJsonTest, AliasCycleStopsAtTheDepthBound) {
  std::string path = "a";
  for (int i = 0; i < kMaxYamlDepth; ++i) path += "[0]";
  EXPECT_EQ(Json("a: &x [*x]\n"),
            absl::StrCat("t.yaml:1:4: ", path, ": nesting is deeper than ", kMaxYamlDepth,
                         " levels (an alias that contains itself?)"));
}

TEST(YamlToJsonTest, AliasBombStopsAtTheNodeBudget) {
  // Ten levels of ten-fold aliases: 10^10 nodes if expanded.
  std::string yaml = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 10; ++i) {
    absl::StrAppend(&yaml, "l", i, ": &l", i, " [");
    for (int j = 0; j < 10; ++j) absl::StrAppend(&yaml, j ? ", " : "", "*l", i - 1);
    absl::StrAppend(&yaml, "]\n");
  }
  const std::string error = Json(yaml);
  const std::string tail = absl::StrCat(": the document expands to more than ", kMaxYamlNodes,
                                        " nodes (aliases repeated too often?)");
  ASSERT_GE(error.size(), tail.size()) << error;
  EXPECT_EQ(error.substr(error.size() - tail.size()), tail);
}

TEST(YamlToJsonTest, LocationOfIsOneBased) {
  absl::StatusOr<YAML::Node> root = ParseYamlDocument("a: 1\nbb:\n  - cc\n", "t.yaml");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(LocationOf((*root)["a"]).line, 1);
  EXPECT_EQ(LocationOf((*root)["a"]).column, 4);
  EXPECT_EQ(LocationOf((*root)["bb"][0]).line, 3);
  EXPECT_EQ(LocationOf((*root)["bb"][0]).column, 5);
  EXPECT_EQ(LocationOf(YAML::Node()).line, 0);
}

TEST(YamlToJsonTest, DescribeScalarNamesTypeAndValue) {
  absl::StatusOr<YAML::Node> root = ParseYamlDocument(
      "[8080, \"8080\", true, ~, aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]", "t.yaml");
  ASSERT_TRUE(root.ok());
  const char* expected[] = {"the number 8080", "the string \"8080\"", "the boolean true", "null",
                            "the string \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"..."};
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<YamlScalar> scalar = ResolveYamlScalar((*root)[i], "t.yaml", "");
    ASSERT_TRUE(scalar.ok()) << i;
    EXPECT_EQ(DescribeScalar(*scalar, (*root)[i]), expected[i]);
  }
}

}  // namespace
}  // namespace ferry::discovery
