#include "cli/table_printer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ferry::cli {
namespace {

struct TableCase {
  std::string name;
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
  std::string want;
};

class TablePrinterTest : public ::testing::TestWithParam<TableCase> {};

TEST_P(TablePrinterTest, RendersAlignedColumns) {
  const TableCase& c = GetParam();
  TablePrinter table(c.headers);
  for (const auto& row : c.rows) table.AddRow(row);
  EXPECT_EQ(table.Render(), c.want);
  EXPECT_EQ(table.row_count(), c.rows.size());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TablePrinterTest,
    ::testing::Values(
        TableCase{"HeaderOnly", {"NAME", "VIP"}, {}, "NAME  VIP\n"},
        TableCase{"WidestCellSetsTheWidth",
                  {"NAME", "VIP", "HEALTH"},
                  {{"ollama-api", "10.100.0.17", "healthy"}, {"db", "10.100.0.2", "unhealthy"}},
                  "NAME        VIP          HEALTH\n"
                  "ollama-api  10.100.0.17  healthy\n"
                  "db          10.100.0.2   unhealthy\n"},
        TableCase{"HeaderWiderThanCells",
                  {"CONNECTOR", "X"},
                  {{"a", "b"}},
                  "CONNECTOR  X\na          b\n"},
        TableCase{"EmptyCellsPrintAsDash", {"A", "B", "C"}, {{"", "x", ""}}, "A  B  C\n-  x  -\n"},
        TableCase{"ShortRowsArePadded", {"A", "B"}, {{"only"}}, "A     B\nonly  -\n"},
        TableCase{"LongRowsAreCut", {"A"}, {{"a", "extra"}}, "A\na\n"},
        TableCase{"NoTrailingBlanksAfterTheLastColumn",
                  {"A", "LONG-HEADER"},
                  {{"x", "y"}},
                  "A  LONG-HEADER\nx  y\n"}),
    [](const ::testing::TestParamInfo<TableCase>& info) { return info.param.name; });

}  // namespace
}  // namespace ferry::cli
