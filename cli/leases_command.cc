#include "cli/leases_command.h"

#include "cli/admin_client.h"
#include "cli/admin_format.h"

namespace ferry::cli {

int RunLeasesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunListingCommand(
      "ferryctl leases",
      "Usage: ferryctl leases [flags]\n\n"
      "VIP leases: tenant, service, address, pool and whether it is pinned.\n"
      "Exit: 0 ok, 1 RPC error, 2 usage, 3 unreachable.\n",
      args,
      [](AdminClient& client, const std::string& tenant,
         OutputFormat format) -> absl::StatusOr<std::string> {
        absl::StatusOr<v1::ListLeasesResponse> leases = client.ListLeases(tenant);
        if (!leases.ok()) return leases.status();
        return format == OutputFormat::kJson ? MessageToJson(*leases) : LeasesTable(*leases);
      },
      out, err);
}

}  // namespace ferry::cli
