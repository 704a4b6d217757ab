// The behaviour every StateStore implementation must show — key/value semantics, compare-and-swap,
// atomic batches, watch delivery, and thread safety — as one parameterized gtest suite, so the
// embedded store, the in-memory double and a future etcd backend are held to the same contract.
//
// Use it from an implementation's test (link :state_store_conformance):
//
//   INSTANTIATE_TEST_SUITE_P(
//       Embedded, StateStoreConformanceTest,
//       ::testing::Values(StateStoreFactory{"Defaults", [] { return MakeMyStore(); }}),
//       StateStoreFactoryName);
//
// Each test calls the factory once for a fresh, empty store.

#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "controlplane/state_store.h"
#include "gtest/gtest.h"

namespace ferry::controlplane {

struct StateStoreFactory {
  std::string name;  // a test-name suffix: letters, digits and underscores
  std::function<std::unique_ptr<StateStore>()> make;

  friend std::ostream& operator<<(std::ostream& os, const StateStoreFactory& f) {
    return os << f.name;
  }
};

// Names instantiations after StateStoreFactory::name.
std::string StateStoreFactoryName(const ::testing::TestParamInfo<StateStoreFactory>& info);

class StateStoreConformanceTest : public ::testing::TestWithParam<StateStoreFactory> {
 protected:
  void SetUp() override;

  std::unique_ptr<StateStore> store_;
};

}  // namespace ferry::controlplane
