#include "cli/table_printer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ferry::cli {

TablePrinter::TablePrinter(std::vector<std::string> headers) : headers_(std::move(headers)) {
  if (headers_.empty()) headers_.push_back("");
}

void TablePrinter::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  for (std::string& cell : cells) {
    if (cell.empty()) cell = "-";
  }
  rows_.push_back(std::move(cells));
}

std::string TablePrinter::Render() const {
  std::vector<size_t> widths(headers_.size(), 0);
  auto measure = [&widths](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  };
  measure(headers_);
  for (const auto& row : rows_) measure(row);

  std::string text;
  auto append = [&text, &widths](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        absl::StrAppend(&text, row[i]);
      } else {
        absl::StrAppendFormat(&text, "%-*s  ", static_cast<int>(widths[i]), row[i]);
      }
    }
    text += "\n";
  };
  append(headers_);
  for (const auto& row : rows_) append(row);
  return text;
}

}  // namespace ferry::cli
