#include "cli/sessions_command.h"

#include "absl/time/clock.h"
#include "cli/admin_client.h"
#include "cli/admin_format.h"

namespace ferry::cli {

int RunSessionsCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunListingCommand(
      "ferryctl sessions",
      "Usage: ferryctl sessions [flags]\n\n"
      "Data-plane sessions: id, service, agent, connector, relay, path, time to expiry.\n"
      "Exit: 0 ok, 1 RPC error, 2 usage, 3 unreachable.\n",
      args,
      [](AdminClient& client, const std::string& tenant,
         OutputFormat format) -> absl::StatusOr<std::string> {
        absl::StatusOr<v1::ListSessionsResponse> sessions = client.ListSessions(tenant);
        if (!sessions.ok()) return sessions.status();
        return format == OutputFormat::kJson ? MessageToJson(*sessions)
                                             : SessionsTable(*sessions, absl::Now());
      },
      out, err);
}

}  // namespace ferry::cli
