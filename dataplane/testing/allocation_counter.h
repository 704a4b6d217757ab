// Counts heap allocations in a test binary, so that a test can check that a stretch of code (a
// per-frame path) allocates nothing.
//
// Linking //dataplane/testing:allocation_counter replaces the global operator new / new[] (and
// their matching deletes) for the whole binary with malloc/free plus a counter. Only one such
// replacement may be linked into a binary.

#ifndef FERRY_DATAPLANE_TESTING_ALLOCATION_COUNTER_H_
#define FERRY_DATAPLANE_TESTING_ALLOCATION_COUNTER_H_

namespace ferry::dataplane::test {

// Calls to operator new and operator new[] (throwing and nothrow) in this process so far, from
// any thread. Compare two readings around the code under test.
long AllocationCount();

}  // namespace ferry::dataplane::test

#endif  // FERRY_DATAPLANE_TESTING_ALLOCATION_COUNTER_H_
