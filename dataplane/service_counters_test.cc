#include "dataplane/service_counters.h"

#include <map>
#include <memory>
#include <tuple>

#include "gtest/gtest.h"

namespace ferry::dataplane {
namespace {

using Totals = std::tuple<uint64_t, uint64_t, uint64_t, uint64_t>;

std::map<uint32_t, Totals> Read(const ServiceCounters& counters) {
  std::map<uint32_t, Totals> out;
  counters.ForEach([&](uint32_t id, uint64_t fi, uint64_t bi, uint64_t fo, uint64_t bo) {
    out[id] = Totals{fi, bi, fo, bo};
  });
  return out;
}

TEST(ServiceCountersTest, CountsEachServiceApart) {
  auto counters = std::make_unique<ServiceCounters>();
  counters->CountIn(7, 100);
  counters->CountIn(7, 50);
  counters->CountOut(7, 10);
  counters->CountOut(9, 1);
  std::map<uint32_t, Totals> totals = Read(*counters);
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[7], (Totals{2, 150, 1, 10}));
  EXPECT_EQ(totals[9], (Totals{0, 0, 1, 1}));
}

TEST(ServiceCountersTest, ServicesBeyondTheSlotsAreReportedAsServiceZero) {
  auto counters = std::make_unique<ServiceCounters>();
  for (uint32_t id = 1; id <= ServiceCounters::kSlots + 3; ++id) counters->CountIn(id, 1);
  counters->CountOut(0, 5);
  std::map<uint32_t, Totals> totals = Read(*counters);
  EXPECT_EQ(totals.size(), ServiceCounters::kSlots + 1);
  // Three services found no slot, and service 0 itself goes there too.
  EXPECT_EQ(totals[0], (Totals{3, 3, 1, 5}));
}

}  // namespace
}  // namespace ferry::dataplane
