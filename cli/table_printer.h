// Aligned, kubectl-style text tables for ferryctl's listings.
//
//   TablePrinter table({"NAME", "VIP", "HEALTH"});
//   table.AddRow({"ollama-api", "10.100.0.17", "healthy"});
//   out << table.Render();
//
//   NAME        VIP          HEALTH
//   ollama-api  10.100.0.17  healthy
//
// Columns are left-aligned and separated by two spaces; the last column is not
// padded, so lines carry no trailing blanks. Widths count bytes (ferryctl's
// cells are ASCII: names are DNS labels, addresses and enum words).
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace ferry::cli {

class TablePrinter {
 public:
  // `headers` fixes the number of columns (at least one).
  explicit TablePrinter(std::vector<std::string> headers);

  // Appends a row. A row shorter than the header is padded with "-" cells; a
  // longer one is cut to the header's width. An empty cell prints as "-", so
  // that every column stays readable by `awk`.
  void AddRow(std::vector<std::string> cells);

  size_t row_count() const { return rows_.size(); }

  // The header line and every row, each ending in "\n".
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace ferry::cli
