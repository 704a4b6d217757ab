// Per-frame costs of the worker's flow table: Find of a live flow and of an absent one, and an
// Insert followed by an Erase (a flow opening and closing), each with the table 50% and 90% full.
// Run: bazel run --config=opt //bench:flow_table_bench

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "dataplane/flow_table.h"

namespace ferry::dataplane {
namespace {

constexpr size_t kCapacity = 65536;
constexpr uint64_t kSessions = 64;

// What a worker keeps per flow, roughly: a replay window is bigger, but the table only moves
// values on Insert and Erase.
struct BenchValue {
  uint64_t counters[4] = {};
  uint32_t upstream_flow_id = 0;
  int fd = -1;
};

// A table filled to `load_percent` of kCapacity, the keys in it, and as many keys not in it.
struct Fixture {
  std::unique_ptr<FlowTable<BenchValue>> table;
  std::vector<FlowKey> present;
  std::vector<FlowKey> absent;
};

Fixture MakeFixture(int64_t load_percent) {
  FlowTableOptions options;
  options.capacity = kCapacity;
  options.max_flows_per_session = kCapacity;
  options.hash_seed = 0x243F6A8885A308D3ULL;
  Fixture f;
  f.table = std::make_unique<FlowTable<BenchValue>>(options);
  const size_t live = kCapacity * static_cast<size_t>(load_percent) / 100;
  std::mt19937_64 rng(1);
  std::vector<uint64_t> sessions;
  for (uint64_t s = 0; s < kSessions; ++s) sessions.push_back(rng());
  // Sequential flow ids per session, as agents hand them out: every key is new.
  uint32_t next_flow[kSessions] = {};
  auto fresh_key = [&] {
    const size_t s = rng() % kSessions;
    return FlowKey{sessions[s], next_flow[s]++};
  };
  while (f.present.size() < live) {
    const FlowKey key = fresh_key();
    f.present.push_back(key);
    FlowInsertResult result;
    if (f.table->Insert(key, 0, &result) == kNoFlow) std::abort();
  }
  while (f.absent.size() < live) f.absent.push_back(fresh_key());
  std::shuffle(f.present.begin(), f.present.end(), rng);
  return f;
}

void BM_FindHit(benchmark::State& state) {
  Fixture f = MakeFixture(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->Find(f.present[i]));
    if (++i == f.present.size()) i = 0;
  }
}
BENCHMARK(BM_FindHit)->ArgName("load_percent")->Arg(50)->Arg(90);

void BM_FindMiss(benchmark::State& state) {
  Fixture f = MakeFixture(state.range(0));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.table->Find(f.absent[i]));
    if (++i == f.absent.size()) i = 0;
  }
}
BENCHMARK(BM_FindMiss)->ArgName("load_percent")->Arg(50)->Arg(90);

// One flow opens and closes; the load stays where it is.
void BM_InsertErase(benchmark::State& state) {
  Fixture f = MakeFixture(state.range(0));
  size_t i = 0;
  int64_t now = 0;
  for (auto _ : state) {
    FlowInsertResult result;
    const FlowHandle h = f.table->Insert(f.absent[i], ++now, &result);
    benchmark::DoNotOptimize(h);
    f.table->Erase(h);
    if (++i == f.absent.size()) i = 0;
  }
}
BENCHMARK(BM_InsertErase)->ArgName("load_percent")->Arg(50)->Arg(90);

}  // namespace
}  // namespace ferry::dataplane
