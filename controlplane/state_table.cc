#include "controlplane/state_table.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace ferry::controlplane {

absl::Status ValidateKey(absl::string_view key) {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        "state store key is empty; keys are non-empty paths such as /services/<tenant>/<name>");
  }
  return absl::OkStatus();
}

absl::Status ValidateMutations(const std::vector<Mutation>& mutations) {
  for (size_t i = 0; i < mutations.size(); ++i) {
    absl::Status status = ValidateKey(mutations[i].key);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("mutation ", i, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

StateTable::StateTable(int64_t revision, StateEntries entries)
    : revision_(revision), entries_(std::move(entries)) {}

std::optional<std::string> StateTable::Get(absl::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::vector<KeyValue> StateTable::List(absl::string_view prefix) const {
  std::vector<KeyValue> result;
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && absl::StartsWith(it->first, prefix); ++it) {
    result.push_back(KeyValue{it->first, it->second});
  }
  return result;
}

std::vector<Mutation> StateTable::Changes(const std::vector<Mutation>& batch) const {
  // Whether each key the batch touched exists after the mutations seen so far.
  std::map<absl::string_view, bool> exists_after;
  std::vector<Mutation> changes;
  for (const Mutation& m : batch) {
    if (m.type == ChangeType::kPut) {
      exists_after[m.key] = true;
      changes.push_back(m);
      continue;
    }
    auto seen = exists_after.find(m.key);
    const bool exists =
        seen != exists_after.end() ? seen->second : entries_.find(m.key) != entries_.end();
    if (exists) changes.push_back(Mutation::Delete(m.key));
    exists_after[m.key] = false;
  }
  return changes;
}

std::optional<std::vector<Mutation>> StateTable::CompareAndSwapChanges(
    absl::string_view key, const std::optional<std::string>& expected,
    const std::optional<std::string>& desired) const {
  auto it = entries_.find(key);
  const bool matches = it == entries_.end() ? !expected.has_value()
                                            : expected.has_value() && *expected == it->second;
  if (!matches) return std::nullopt;
  if (desired.has_value()) return std::vector<Mutation>{Mutation::Put(std::string(key), *desired)};
  return Changes({Mutation::Delete(std::string(key))});
}

std::vector<WatchEvent> StateTable::Commit(std::vector<Mutation> changes) {
  CHECK(!changes.empty()) << "an empty write must not take a revision";
  ++revision_;
  std::vector<WatchEvent> events;
  events.reserve(changes.size());
  for (Mutation& m : changes) {
    if (m.type == ChangeType::kPut) {
      entries_.insert_or_assign(m.key, m.value);
    } else {
      auto it = entries_.find(m.key);
      if (it != entries_.end()) entries_.erase(it);
    }
    events.push_back(WatchEvent{m.type, std::move(m.key), std::move(m.value), revision_});
  }
  return events;
}

}  // namespace ferry::controlplane
