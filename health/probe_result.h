// ProbeResult: the outcome of one health check attempt, shared by every probe kind.

#ifndef FERRY_HEALTH_PROBE_RESULT_H_
#define FERRY_HEALTH_PROBE_RESULT_H_

#include <string>

namespace ferry::health {

struct ProbeResult {
  bool ok = false;
  // "ok" on success; otherwise why it failed, for logs and transitions: "connect: Connection
  // refused", "http status 503 not in 200..399", "timeout".
  std::string detail;
};

}  // namespace ferry::health

#endif  // FERRY_HEALTH_PROBE_RESULT_H_
