// The version of Ferry's tools, as `ferryctl version` prints it and backups record it.
#pragma once

namespace ferry::cli {

inline constexpr char kFerryVersion[] = "0.1.0-dev";

}  // namespace ferry::cli
